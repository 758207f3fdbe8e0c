// Token analysis: probes from activations that hold a known lag recover it exactly and find
// nothing of an unrelated one; bad input is an error.
#include "analysis/token_analysis.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace mesalab {
namespace {

constexpr int kB = 400, kT = 10, kD = 3, kE = 8;

TokenBatch random_states(uint64_t seed) {
  TokenBatch batch;
  batch.batch = kB;
  batch.seq_len = kT;
  batch.dim = kD;
  Rng rng{seed};
  batch.states.resize(size_t(kB) * (kT + 1) * kD);
  for (double& s : batch.states) s = rng.normal();
  return batch;
}

// Layer 1 at token t holds [u_{t-2} (mixed by a fixed invertible map), noise]; layer 0 holds
// [u_t, noise].
LayerActivations activations_with_lag(const TokenBatch& batch, uint64_t seed) {
  LayerActivations acts;
  acts.batch = kB;
  acts.seq_len = kT;
  acts.layers = 1;
  acts.width = kE;
  acts.values.assign(size_t(2) * kT * kB * kE, 0.0);
  Rng rng{seed};
  for (int l = 0; l <= 1; ++l)
    for (int t = 0; t < kT; ++t)
      for (int b = 0; b < kB; ++b) {
        double* a = acts.values.data() + ((size_t(l) * kT + t) * kB + b) * kE;
        const int source = l == 0 ? t : std::max(t - 2, 0);
        const double* u = batch.states.data() + (size_t(b) * (kT + 1) + source) * kD;
        a[0] = u[0] + u[1];
        a[1] = u[1] - u[2];
        a[2] = 2 * u[2];
        for (int e = kD; e < kE; ++e) a[e] = rng.normal();
      }
  return acts;
}

TEST(TokenAnalysis, ProbesRecoverTheLagTheActivationsHold) {
  const TokenBatch batch = random_states(1);
  const LayerActivations acts = activations_with_lag(batch, 2);
  const LagProbes after = lag_probes(acts, batch, 1, 7, 5);
  ASSERT_EQ(after.fits.size(), 6u);
  EXPECT_GT(after.fits[2].r2, 1 - 1e-10);
  EXPECT_LT(after.fits[2].loss, 1e-20);
  for (int k : {0, 1, 3, 4, 5}) {
    // In-sample R^2 of an unrelated target is ~ E / B = 0.02.
    EXPECT_LT(after.fits[size_t(k)].r2, 0.06) << "lag " << k;
    EXPECT_GT(after.fits[size_t(k)].loss, 1.0) << "lag " << k;  // ~ D (1 - R^2) / 2
  }
  const LagProbes input = lag_probes(acts, batch, 0, 7, 5);
  EXPECT_GT(input.fits[0].r2, 1 - 1e-10);
  EXPECT_LT(input.fits[2].r2, 0.06);
  // Near the start fewer lags exist.
  EXPECT_EQ(lag_probes(acts, batch, 1, 1, 5).fits.size(), 2u);
}

TEST(TokenAnalysis, BadInputIsAnError) {
  const TokenBatch batch = random_states(3);
  const LayerActivations acts = activations_with_lag(batch, 4);
  EXPECT_THROW(lag_probes(acts, batch, 2, 3, 2), Error);
  EXPECT_THROW(lag_probes(acts, batch, 1, kT, 2), Error);
  EXPECT_THROW(lag_probes(acts, batch, 1, 3, -1), Error);
  TokenBatch no_states = batch;
  no_states.states.clear();
  EXPECT_THROW(lag_probes(acts, no_states, 1, 3, 2), Error);
}

}  // namespace
}  // namespace mesalab
