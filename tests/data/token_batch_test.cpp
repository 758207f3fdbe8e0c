#include "data/token_batch.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

TokenSource source_of(DynamicsKind kind, TokenFormat format) {
  TokenSource source;
  source.data.kind = kind;
  source.data.seq_len = 12;
  source.data.dim = 4;
  source.format = format;
  source.width = format == TokenFormat::Raw ? 4 : 16;
  if (kind == DynamicsKind::Contracting) source.data.obs_dim = 3;  // an observation model too
  if (kind == DynamicsKind::Contracting) source.width = format == TokenFormat::Raw ? 3 : 12;
  return source;
}

// The batch equals, sequence by sequence, sample_sequences followed by build_tokens: the
// parallel path draws the same streams into the same places.
TEST(TokenBatch, EqualsSampleSequencesThenBuildTokens) {
  for (DynamicsKind kind : {DynamicsKind::Linear, DynamicsKind::Contracting,
                            DynamicsKind::Nonlinear, DynamicsKind::Fixed}) {
    for (TokenFormat format : {TokenFormat::Constructed, TokenFormat::Raw}) {
      const TokenSource source = source_of(kind, format);
      constexpr int kBatch = 19;  // three sequence blocks, the last one partial
      TokenBatch batch;
      fill_token_batch(source, 5, RngPurpose::TrainData, 7, kBatch, batch);
      const std::vector<double> states =
          sample_states(source.data, 5, RngPurpose::TrainData, 7, kBatch);
      const int T = source.data.seq_len, O = observed_dim(source.data);
      std::vector<float> tokens(size_t(kBatch) * T * source.width), labels(size_t(kBatch) * T * O);
      build_tokens(format, states.data(), kBatch, T, O, source.width, tokens.data(), labels.data());
      EXPECT_EQ(batch.states, states) << dynamics_name(kind);
      EXPECT_EQ(batch.tokens, tokens) << dynamics_name(kind) << " " << token_format_name(format);
      EXPECT_EQ(batch.labels, labels) << dynamics_name(kind) << " " << token_format_name(format);
      EXPECT_EQ(batch.dim, O);
      EXPECT_EQ(batch.width, source.width);
    }
  }
}

// Training draws without states into a reused buffer: the same tokens, and a refill leaves
// nothing of the previous batch behind.
TEST(TokenBatch, ReusedBufferWithoutStatesHoldsTheSameBatch) {
  const TokenSource source = source_of(DynamicsKind::Contracting, TokenFormat::Constructed);
  TokenBatch fresh, reused;
  fill_token_batch(source, 3, RngPurpose::TrainData, 2, 10, fresh);
  fill_token_batch(source, 3, RngPurpose::TrainData, 1, 10, reused, /*keep_states=*/false);
  ASSERT_NE(reused.tokens, fresh.tokens);
  fill_token_batch(source, 3, RngPurpose::TrainData, 2, 10, reused, /*keep_states=*/false);
  EXPECT_TRUE(reused.states.empty());
  EXPECT_EQ(reused.tokens, fresh.tokens);
  EXPECT_EQ(reused.labels, fresh.labels);
}

TEST(TokenBatch, BitIdenticalForAnyThreadCount) {
  const testing::ThreadCountGuard guard;
  const TokenSource source = source_of(DynamicsKind::Linear, TokenFormat::Constructed);
  omp_set_num_threads(1);
  TokenBatch one;
  fill_token_batch(source, 9, RngPurpose::TestData, 0, 37, one);
  omp_set_num_threads(2);
  TokenBatch two;
  fill_token_batch(source, 9, RngPurpose::TestData, 0, 37, two);
  EXPECT_EQ(one.states, two.states);
  EXPECT_EQ(one.tokens, two.tokens);
}

TEST(TokenBatch, BadInputIsAnError) {
  TokenSource source = source_of(DynamicsKind::Linear, TokenFormat::Constructed);
  TokenBatch batch;
  EXPECT_THROW(fill_token_batch(source, 1, RngPurpose::TrainData, 0, 0, batch), Error);
  source.width = 15;  // constructed tokens need 4 dim = 16
  EXPECT_THROW(fill_token_batch(source, 1, RngPurpose::TrainData, 0, 4, batch), Error);
  source.width = 16;
  source.data.seq_len = 0;
  EXPECT_THROW(fill_token_batch(source, 1, RngPurpose::TrainData, 0, 4, batch), Error);
}

}  // namespace
}  // namespace mesalab
