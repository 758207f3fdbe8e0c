#include "data/tokens.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.hpp"
#include "data/sequences.hpp"

namespace mesalab {
namespace {

// State value that encodes its own position, exact in float: s[b, k, d] = 100 b + 10 k + d + 1/2
// (row k of a sequence is time t = k + 1).
double encoded(int b, int k, int d) { return 100.0 * b + 10.0 * k + d + 0.5; }

template <class S>
void check_layout() {
  constexpr int kBatch = 2, kT = 4, kD = 3, kE = 4 * kD;
  std::vector<double> states(kBatch * (kT + 1) * kD);
  for (int b = 0; b < kBatch; ++b) {
    for (int k = 0; k <= kT; ++k) {
      for (int d = 0; d < kD; ++d) states[(b * (kT + 1) + k) * kD + d] = encoded(b, k, d);
    }
  }
  std::vector<S> tokens(kBatch * kT * kE, S(-1));
  std::vector<S> labels(kBatch * kT * kD, S(-1));
  build_constructed_tokens<S>(states.data(), kBatch, kT, kD, tokens.data(), labels.data());
  for (int b = 0; b < kBatch; ++b) {
    for (int k = 0; k < kT; ++k) {  // token row k is e_t with t = k + 1
      const S* e = &tokens[(b * kT + k) * kE];
      const S* y = &labels[(b * kT + k) * kD];
      for (int d = 0; d < kD; ++d) {
        EXPECT_EQ(e[d], S(0)) << "b " << b << " k " << k;
        EXPECT_EQ(e[kD + d], S(encoded(b, k, d)));
        EXPECT_EQ(e[2 * kD + d], S(encoded(b, k, d)));
        EXPECT_EQ(e[3 * kD + d], k == 0 ? S(0) : S(encoded(b, k - 1, d)));
        EXPECT_EQ(y[d], S(encoded(b, k + 1, d)));
        // The label of row k is the current state of row k + 1.
        if (k + 1 < kT) {
          EXPECT_EQ(y[d], tokens[(b * kT + k + 1) * kE + kD + d]);
        }
      }
    }
  }
}

TEST(ConstructedTokens, LayoutDouble) { check_layout<double>(); }
TEST(ConstructedTokens, LayoutFloat) { check_layout<float>(); }

// Sampled (not float-exact) states: every float token and label is the nearest float of the
// state the layout puts there, read from the states by index arithmetic alone.
TEST(ConstructedTokens, FloatTokensAreTheRoundedStates) {
  const DataConfig cfg;
  constexpr int kBatch = 3;
  const int T = cfg.seq_len, D = cfg.dim;
  const std::vector<double> states = sample_states(cfg, 1, RngPurpose::TrainData, 0, kBatch);
  std::vector<float> tok(size_t(kBatch) * T * 4 * D), lab(size_t(kBatch) * T * D);
  build_constructed_tokens(states.data(), kBatch, T, D, tok.data(), lab.data());
  auto state = [&](int b, int t, int d) {  // s_t, t = 0..T+1, s_0 = 0
    return t == 0 ? 0.0 : states[(size_t(b) * (T + 1) + t - 1) * D + d];
  };
  for (int b = 0; b < kBatch; ++b)
    for (int t = 1; t <= T; ++t)
      for (int d = 0; d < D; ++d) {
        const float* e = &tok[(size_t(b) * T + t - 1) * 4 * D];
        ASSERT_EQ(e[d], 0.0f);
        ASSERT_EQ(e[D + d], float(state(b, t, d)));
        ASSERT_EQ(e[2 * D + d], float(state(b, t, d)));
        ASSERT_EQ(e[3 * D + d], float(state(b, t - 1, d)));
        ASSERT_EQ(lab[(size_t(b) * T + t - 1) * D + d], float(state(b, t + 1, d)));
      }
}

TEST(ConstructedTokens, RejectsBadShape) {
  std::vector<double> buf(64);
  EXPECT_THROW(build_constructed_tokens(buf.data(), 0, 2, 2, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_constructed_tokens(buf.data(), 1, 0, 2, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_constructed_tokens(buf.data(), 1, 2, 0, buf.data(), buf.data()), Error);
}

}  // namespace
}  // namespace mesalab
