#include "model/batch_runner.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <vector>

#include "core/error.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

ModelConfig small_model() {
  ModelConfig cfg;
  cfg.embed_dim = 16;
  cfg.data_dim = 4;
  cfg.heads = 2;
  cfg.key_size = 6;
  cfg.mixers = {MixerKind::Linear, MixerKind::Softmax};
  return cfg;
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  return testing::cast<float>(testing::random_vector(n, seed));
}

// The gradient of a batch of 4 chunks is the double sum of the chunks' gradients, rounded
// once to float. Each chunk alone (batch 8, scale 1/(8T)) gives exactly 4x its share of the
// batch gradient (scale 1/(32T)): scaling by a power of two rounds identically. Summing the
// partials in float instead rounds after every addition, which this comparison catches.
TEST(BatchRunner, ReducesChunkPartialsInDouble) {
  const Transformer model(small_model());
  constexpr int kT = 10, kChunks = 4, kBatch = kChunks * kChunkSequences;
  const int E = model.config().token_dim(), D = model.config().data_dim;
  const size_t P = model.num_params();
  std::vector<float> params(P);
  model.init_params(params.data(), 3);
  const std::vector<float> tokens = random_floats(size_t(kBatch) * kT * E, 1);
  const std::vector<float> labels = random_floats(size_t(kBatch) * kT * D, 2);

  BatchRunner<float> full(model, kBatch, kT);
  std::vector<float> grads(P);
  full.loss_and_grad(params.data(), tokens.data(), labels.data(), grads.data());

  BatchRunner<float> one_chunk(model, kChunkSequences, kT);
  std::vector<double> sum(P, 0.0);
  std::vector<float> float_sum(P, 0.0f), chunk_grads(P);
  for (int c = 0; c < kChunks; ++c) {
    const size_t first = size_t(c) * kChunkSequences * kT;
    one_chunk.loss_and_grad(params.data(), tokens.data() + first * E, labels.data() + first * D,
                            chunk_grads.data());
    for (size_t i = 0; i < P; ++i) {
      sum[i] += double(chunk_grads[i]) * 0.25;
      float_sum[i] += chunk_grads[i] * 0.25f;
    }
  }
  size_t float_sum_differs = 0;
  for (size_t i = 0; i < P; ++i) {
    ASSERT_EQ(grads[i], float(sum[i])) << "parameter " << i;
    float_sum_differs += float_sum[i] != float(sum[i]);
  }
  // The data are such that a float reduction would have failed the check above.
  EXPECT_GT(float_sum_differs, 0U);
}

// Evaluation runners keep no gradient buffers and two mesa inverse states instead of T: the
// same per-token errors bit for bit, and a backward on them is refused.
TEST(BatchRunner, ForwardOnlyRunnerGivesTheSameErrorsForEveryLayerKind) {
  ModelConfig cfg = small_model();
  cfg.mixers = {MixerKind::Mesa, MixerKind::Linear, MixerKind::Softmax};
  const Transformer model(cfg);
  constexpr int kT = 12, kBatch = 2 * kChunkSequences + 3;
  std::vector<float> params(model.num_params()), grads(model.num_params());
  model.init_params(params.data(), 5);
  for (float& p : params) p *= 500.0f;  // O(0.1) weights: outputs far from zero
  const std::vector<float> tokens =
      random_floats(size_t(kBatch) * kT * model.config().token_dim(), 4);
  const std::vector<float> labels = random_floats(size_t(kBatch) * kT * model.config().data_dim, 6);
  BatchRunner<float> full(model, kBatch, kT), forward_only(model, kBatch, kT, true);
  std::vector<double> a(size_t(kBatch) * kT), b(a.size());
  full.token_errors(params.data(), tokens.data(), labels.data(), a.data());
  forward_only.token_errors(params.data(), tokens.data(), labels.data(), b.data());
  EXPECT_EQ(a, b);
  EXPECT_THROW(
      forward_only.loss_and_grad(params.data(), tokens.data(), labels.data(), grads.data()), Error);
}

// A backward needs the forward of the same chunk on a workspace that keeps gradients.
TEST(Transformer, BackwardNeedsTheForwardOfTheSameChunk) {
  const Transformer model(small_model());
  constexpr int kT = 4;
  std::vector<float> params(model.num_params()), grads(model.num_params());
  model.init_params(params.data(), 1);
  const std::vector<float> tokens(size_t(2) * kT * model.config().token_dim(), 0.5f);
  const std::vector<float> d_pred(size_t(2) * kT * model.config().data_dim, 0.5f);
  auto ws = model.make_workspace<float>(2, kT);
  EXPECT_THROW(
      model.backward<float>(params.data(), tokens.data(), 2, ws, d_pred.data(), grads.data()),
      Error);
  model.forward<float>(params.data(), tokens.data(), 2, ws);
  EXPECT_THROW(
      model.backward<float>(params.data(), tokens.data(), 1, ws, d_pred.data(), grads.data()),
      Error);
  EXPECT_NO_THROW(
      model.backward<float>(params.data(), tokens.data(), 2, ws, d_pred.data(), grads.data()));
  auto forward_only = model.make_workspace<float>(2, kT, /*forward_only=*/true);
  model.forward<float>(params.data(), tokens.data(), 2, forward_only);
  EXPECT_THROW(model.backward<float>(params.data(), tokens.data(), 2, forward_only, d_pred.data(),
                                     grads.data()),
               Error);
}

// A runner sized for one thread refuses to run on two instead of indexing past its
// workspaces.
TEST(BatchRunner, MoreThreadsThanAtConstructionIsAnError) {
  if (omp_get_num_procs() < 2) GTEST_SKIP() << "needs 2 processors";
  const testing::ThreadCountGuard guard;
  const Transformer model(small_model());
  constexpr int kT = 5, kBatch = 4 * kChunkSequences;
  std::vector<float> params(model.num_params()), grads(model.num_params());
  model.init_params(params.data(), 1);
  const std::vector<float> tokens(size_t(kBatch) * kT * model.config().token_dim(), 0.5f);
  const std::vector<float> labels(size_t(kBatch) * kT * model.config().data_dim, 0.5f);
  omp_set_num_threads(1);
  BatchRunner<float> runner(model, kBatch, kT);
  omp_set_num_threads(2);
  omp_set_dynamic(0);
  EXPECT_THROW(runner.loss_and_grad(params.data(), tokens.data(), labels.data(), grads.data()),
               Error);
}

}  // namespace
}  // namespace mesalab
