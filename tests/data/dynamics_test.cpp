// The non-default sequence generators (SPEC_EXPERIMENTS.md 1a-1d): contracting, nonlinear and
// fixed-W dynamics, the observation model, validation and determinism. Statistical checks use
// fixed seeds and bands of >= 5 estimated standard deviations, yet reject the nearest wrong
// constant (e.g. a std of 0.25 vs 0.5).
#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <functional>
#include <numbers>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/sequences.hpp"
#include "data/tokens.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMatrix>;

DataConfig config_of(DynamicsKind kind) {
  DataConfig cfg;
  cfg.kind = kind;
  return cfg;
}

bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Mean and standard deviation of a sample.
struct Moments {
  double mean = 0.0;
  double std_dev = 0.0;
};
Moments moments(const std::vector<double>& x) {
  double sum = 0.0;
  double sum_sq = 0.0;
  for (double v : x) {
    sum += v;
    sum_sq += v * v;
  }
  const double n = double(x.size());
  const double mean = sum / n;
  return {mean, std::sqrt(std::max(0.0, sum_sq / n - mean * mean))};
}

// One sequence drawn from the stream sample_sequences uses for row `b`.
struct Drawn {
  std::vector<double> hidden, observed, w, c;
};
Drawn draw_one(const DataConfig& cfg, uint64_t seed, uint64_t step, uint64_t b) {
  Drawn out;
  out.hidden.resize(size_t(cfg.seq_len + 1) * cfg.dim);
  out.observed.resize(size_t(cfg.seq_len + 1) * observed_dim(cfg));
  out.w.resize(size_t(cfg.dim) * cfg.dim);
  out.c.resize(size_t(std::max(cfg.obs_dim, 0)) * cfg.dim);
  Rng rng{seed, uint64_t(RngPurpose::TrainData), step, b};
  sample_sequence(cfg, shared_dynamics(cfg), rng, out.hidden.data(), out.observed.data(),
                  out.w.data(), out.c.data());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Contracting (1a)

// W = G diag(lambda) G^{-1}: eigenvalues real, in [min_eig, max_eig], one equal to max_eig; the
// others spread uniformly. Also for a range that is not the default and crosses 1 and 0.
TEST(SequencesContracting, EigenvaluesAreRealInRangeAndIncludeMax) {
  struct Range {
    int dim;
    double lo, hi;
  };
  for (const Range& r : {Range{10, 0.3, 0.9}, Range{3, 0.3, 0.9}, Range{1, 0.3, 0.9},
                         Range{6, -0.5, 1.2}, Range{4, 0.7, 0.7}}) {
    std::vector<double> w(size_t(r.dim) * r.dim);
    std::vector<double> others;  // every eigenvalue but the one matched to max_eig
    for (uint64_t n = 0; n < 300; ++n) {
      Rng rng{21, uint64_t(RngPurpose::TrainData), n};
      sample_contracting_transition(r.dim, r.lo, r.hi, rng, w.data());
      const Eigen::MatrixXd m = ConstMap(w.data(), r.dim, r.dim);
      const Eigen::EigenSolver<Eigen::MatrixXd> es(m, false);
      ASSERT_EQ(es.info(), Eigen::Success);
      std::vector<double> eig;
      for (int i = 0; i < r.dim; ++i) {
        const std::complex<double> z = es.eigenvalues()(i);
        ASSERT_LT(std::abs(z.imag()), 1e-8) << "dim " << r.dim << " draw " << n;
        ASSERT_GE(z.real(), r.lo - 1e-8) << "dim " << r.dim << " draw " << n;
        ASSERT_LE(z.real(), r.hi + 1e-8) << "dim " << r.dim << " draw " << n;
        eig.push_back(z.real());
      }
      const auto top = std::max_element(eig.begin(), eig.end());
      ASSERT_NEAR(*top, r.hi, 1e-8) << "dim " << r.dim << " draw " << n;
      eig.erase(top);
      others.insert(others.end(), eig.begin(), eig.end());
      // The trace is the sum of the eigenvalues.
      ASSERT_NEAR(m.trace(), r.hi + std::accumulate(eig.begin(), eig.end(), 0.0), 1e-8);
    }
    if (r.dim >= 3 && r.lo < r.hi) {
      // U[lo, hi]: mean (lo + hi)/2, std (hi - lo)/sqrt(12). With >= 600 values the mean has
      // std <= 0.02 (hi - lo); the band is 7 of those.
      const Moments mo = moments(others);
      EXPECT_NEAR(mo.mean, 0.5 * (r.lo + r.hi), 0.14 * (r.hi - r.lo)) << "dim " << r.dim;
      EXPECT_NEAR(mo.std_dev, (r.hi - r.lo) / std::sqrt(12.0), 0.05 * (r.hi - r.lo));
    }
  }
}

// A Gaussian G (not orthogonal) makes W non-normal: W W^T != W^T W, and since |lambda| < 1 it
// can never be orthogonal.
TEST(SequencesContracting, TransitionIsNotOrthogonalOrNormal) {
  constexpr int kDim = 10;
  std::vector<double> w(kDim * kDim);
  int non_normal = 0;
  for (uint64_t n = 0; n < 100; ++n) {
    Rng rng{22, uint64_t(RngPurpose::TrainData), n};
    sample_contracting_transition(kDim, 0.3, 0.9, rng, w.data());
    const Eigen::MatrixXd m = ConstMap(w.data(), kDim, kDim);
    const Eigen::MatrixXd eye = Eigen::MatrixXd::Identity(kDim, kDim);
    EXPECT_GT((m.transpose() * m - eye).cwiseAbs().maxCoeff(), 0.05);
    non_normal += (m * m.transpose() - m.transpose() * m).cwiseAbs().maxCoeff() > 1e-3;
  }
  EXPECT_GE(non_normal, 95);
}

// With W from the out pointer, s_{k+1} - W s_k is the transition noise wherever no clipping
// happened; s_1 is U[-r, r]; W differs between sequences.
TEST(SequencesContracting, ResidualIsTransitionNoise) {
  DataConfig cfg = config_of(DynamicsKind::Contracting);
  cfg.noise_std = 0.1;
  const int d = cfg.dim;
  std::vector<double> residuals;
  std::vector<double> first_w;
  for (uint64_t b = 0; b < 64; ++b) {
    const Drawn s = draw_one(cfg, 6, 0, b);
    EXPECT_TRUE(bit_equal(s.hidden, s.observed));
    if (b == 0) first_w = s.w;
    if (b == 1) {
      EXPECT_FALSE(bit_equal(first_w, s.w));
    }
    const ConstMap m(s.w.data(), d, d);
    const ConstMap x(s.hidden.data(), cfg.seq_len + 1, d);
    ASSERT_LE(x.row(0).cwiseAbs().maxCoeff(), cfg.init_range);
    for (int k = 0; k < cfg.seq_len; ++k) {
      if (x.row(k + 1).cwiseAbs().maxCoeff() >= cfg.state_clip) continue;
      const Eigen::VectorXd r = x.row(k + 1).transpose() - m * x.row(k).transpose();
      residuals.insert(residuals.end(), r.data(), r.data() + d);
    }
  }
  ASSERT_GT(residuals.size(), 30000U);
  // >= 30000 values: the std estimate has relative std ~0.4%.
  const Moments mo = moments(residuals);
  EXPECT_NEAR(mo.std_dev, cfg.noise_std, 0.03 * cfg.noise_std);
  EXPECT_LT(std::abs(mo.mean), 0.003);
}

// Noise-free contracting sequences follow s_{k+1} = W s_k and decay towards 0.
TEST(SequencesContracting, NoiseFreeRecursionIsExact) {
  DataConfig cfg = config_of(DynamicsKind::Contracting);
  cfg.noise_std = 0.0;
  cfg.seq_len = 200;
  const int d = cfg.dim;
  int unclipped = 0;
  for (uint64_t b = 0; b < 16; ++b) {
    const Drawn s = draw_one(cfg, 7, 0, b);
    const ConstMap m(s.w.data(), d, d);
    const ConstMap x(s.hidden.data(), cfg.seq_len + 1, d);
    bool clipped = false;
    for (int k = 0; k < cfg.seq_len; ++k) {
      if (x.row(k + 1).cwiseAbs().maxCoeff() >= cfg.state_clip) {
        clipped = true;
        continue;
      }
      ASSERT_LT((x.row(k + 1).transpose() - m * x.row(k).transpose()).norm(), 1e-12);
    }
    // 0.9^200 = 7e-10, so even a large transient growth has died out. A sequence whose
    // transient growth (W is not normal) hit the clip follows a different, nonlinear map,
    // which can settle on the clip boundary instead, so it is not checked.
    if (clipped) continue;
    ++unclipped;
    EXPECT_LT(x.row(cfg.seq_len).norm(), 1e-4 * x.row(0).norm()) << "sequence " << b;
  }
  EXPECT_GE(unclipped, 12);
}

// ---------------------------------------------------------------------------------------------
// Nonlinear (1b)

double reference_gelu(double u) {
  return 0.5 * u *
         (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (u + 0.044715 * u * u * u)));
}

// f(x) = gelu(x A) B and phi(x) = f / (||f|| + 1e-16), written with Eigen from A, B alone.
struct ReferenceMap {
  Eigen::RowVectorXd f, phi;
};
ReferenceMap reference_map(const NonlinearFeatures& nf, const Eigen::RowVectorXd& x) {
  const ConstMap a(nf.a.data(), nf.dim, nf.hidden);
  const ConstMap b(nf.b.data(), nf.hidden, nf.dim);
  const Eigen::RowVectorXd h = (x * a).unaryExpr(&reference_gelu);
  ReferenceMap out;
  out.f = h * b;
  out.phi = out.f / (out.f.norm() + 1e-16);
  return out;
}

TEST(SequencesNonlinear, FeatureMapMatchesReference) {
  DataConfig cfg = config_of(DynamicsKind::Nonlinear);
  const NonlinearFeatures nf = nonlinear_features(cfg);
  ASSERT_EQ(nf.dim, 10);
  ASSERT_EQ(nf.hidden, 40);
  std::vector<double> f(10), phi(10);
  for (uint64_t n = 0; n < 20; ++n) {
    Rng rng{31, uint64_t(RngPurpose::Probe), n};
    Eigen::RowVectorXd x(10);
    for (int i = 0; i < 10; ++i) x(i) = rng.uniform(-2.0, 2.0);
    nonlinear_feature_map(nf, x.data(), f.data(), phi.data());
    const ReferenceMap ref = reference_map(nf, x);
    for (int i = 0; i < 10; ++i) {
      EXPECT_NEAR(f[i], ref.f(i), 1e-12);
      EXPECT_NEAR(phi[i], ref.phi(i), 1e-12);
    }
    EXPECT_NEAR(Eigen::Map<const Eigen::RowVectorXd>(phi.data(), 10).norm(), 1.0, 1e-12);
  }
  // Either output may be skipped.
  std::vector<double> phi_only(10);
  const std::vector<double> x(10, 0.3);
  nonlinear_feature_map(nf, x.data(), nullptr, phi_only.data());
  nonlinear_feature_map(nf, x.data(), f.data(), nullptr);
  const double norm = std::sqrt(std::inner_product(f.begin(), f.end(), f.begin(), 0.0));
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(phi_only[i], f[i] / norm, 1e-12);
  // gelu(0) = 0, so f(0) = 0 and the 1e-16 keeps phi(0) = 0 instead of NaN.
  const std::vector<double> zero(10, 0.0);
  nonlinear_feature_map(nf, zero.data(), f.data(), phi.data());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(phi[i], 0.0);
}

// The states are reproduced from A, B and W alone; the residual is the transition noise; the
// same A, B serve every seed and step.
TEST(SequencesNonlinear, RecursionReproducedFromFeaturesAndW) {
  DataConfig cfg = config_of(DynamicsKind::Nonlinear);
  cfg.noise_std = 0.05;
  const int d = cfg.dim;
  const NonlinearFeatures nf = nonlinear_features(cfg);
  std::vector<double> residuals;
  for (uint64_t seed : {1, 2}) {
    for (uint64_t step : {0, 9}) {
      for (uint64_t b = 0; b < 16; ++b) {
        const Drawn s = draw_one(cfg, seed, step, b);
        const ConstMap m(s.w.data(), d, d);
        ASSERT_LT((m * m.transpose() - Eigen::MatrixXd::Identity(d, d)).cwiseAbs().maxCoeff(),
                  1e-12);
        const ConstMap x(s.hidden.data(), cfg.seq_len + 1, d);
        ASSERT_LE(x.row(0).cwiseAbs().maxCoeff(), cfg.init_range);
        for (int k = 0; k < cfg.seq_len; ++k) {
          const ReferenceMap ref = reference_map(nf, x.row(k));
          const Eigen::VectorXd r = x.row(k + 1).transpose() - m * ref.phi.transpose();
          residuals.insert(residuals.end(), r.data(), r.data() + d);
        }
      }
    }
  }
  // 32000 values: relative std of the std estimate ~0.4%; the mean has std 3e-4.
  const Moments mo = moments(residuals);
  EXPECT_NEAR(mo.std_dev, cfg.noise_std, 0.03 * cfg.noise_std);
  EXPECT_LT(std::abs(mo.mean), 2e-3);
}

// Without noise s_{k+1} = W phi(s_k) exactly, so W^T s_{k+1} = phi(s_k) has unit norm; states
// are never clipped (a tiny state_clip would otherwise show up).
TEST(SequencesNonlinear, NoiseFreeStatesAreRotatedUnitFeatures) {
  DataConfig cfg = config_of(DynamicsKind::Nonlinear);
  cfg.noise_std = 0.0;
  cfg.state_clip = 1e-3;
  cfg.init_range = 3.0;
  const int d = cfg.dim;
  const NonlinearFeatures nf = nonlinear_features(cfg);
  for (uint64_t b = 0; b < 8; ++b) {
    const Drawn s = draw_one(cfg, 3, 0, b);
    const ConstMap m(s.w.data(), d, d);
    const ConstMap x(s.hidden.data(), cfg.seq_len + 1, d);
    EXPECT_GT(x.row(0).cwiseAbs().maxCoeff(), 1.0);  // s_1 uses init_range 3, unclipped
    for (int k = 0; k < cfg.seq_len; ++k) {
      const Eigen::VectorXd back = m.transpose() * x.row(k + 1).transpose();
      EXPECT_NEAR(back.norm(), 1.0, 1e-12);
      EXPECT_LT((back.transpose() - reference_map(nf, x.row(k)).phi).cwiseAbs().maxCoeff(), 1e-12);
    }
  }
}

// A and B depend only on (nonlinear_seed, dim, hidden): not on the training seed, step or
// purpose. Entries are N(0, 1/D) and N(0, 1/Dh).
TEST(SequencesNonlinear, FeatureWeightsAreFixedWithFanInVariance) {
  DataConfig cfg = config_of(DynamicsKind::Nonlinear);
  cfg.dim = 20;
  const NonlinearFeatures nf = nonlinear_features(cfg);
  ASSERT_EQ(nf.hidden, 80);  // 0 means 4 D
  ASSERT_EQ(nf.a.size(), 1600U);
  ASSERT_EQ(nf.b.size(), 1600U);
  EXPECT_TRUE(bit_equal(nf.a, nonlinear_features(cfg).a));
  EXPECT_TRUE(bit_equal(nf.b, nonlinear_features(cfg).b));
  EXPECT_TRUE(bit_equal(nf.a, shared_dynamics(cfg).features.a));
  // Training-side fields do not touch them.
  DataConfig other = cfg;
  other.noise_std = 0.2;
  other.seq_len = 7;
  other.init_range = 2.0;
  EXPECT_TRUE(bit_equal(nf.a, nonlinear_features(other).a));
  EXPECT_TRUE(bit_equal(nf.b, nonlinear_features(other).b));
  // 1600 entries: the variance estimate has relative std sqrt(2/1600) = 3.5%; a 15% band
  // separates 1/D = 0.05 from 1/Dh = 0.0125 and from 1.
  const Moments ma = moments(nf.a);
  const Moments mb = moments(nf.b);
  EXPECT_NEAR(ma.std_dev * ma.std_dev, 1.0 / 20, 0.15 / 20);
  EXPECT_NEAR(mb.std_dev * mb.std_dev, 1.0 / 80, 0.15 / 80);
  EXPECT_LT(std::abs(ma.mean), 5 * std::sqrt(1.0 / 20 / 1600));
  EXPECT_LT(std::abs(mb.mean), 5 * std::sqrt(1.0 / 80 / 1600));

  DataConfig explicit_hidden = cfg;
  explicit_hidden.nonlinear_hidden = 7;
  EXPECT_EQ(nonlinear_features(explicit_hidden).hidden, 7);
  EXPECT_EQ(nonlinear_hidden_dim(explicit_hidden), 7);
  DataConfig reseeded = cfg;
  reseeded.nonlinear_seed = 43;
  EXPECT_FALSE(bit_equal(nf.a, nonlinear_features(reseeded).a));
  EXPECT_FALSE(bit_equal(nf.b, nonlinear_features(reseeded).b));
  // A and B come from different streams.
  EXPECT_FALSE(bit_equal(nf.a, nf.b));

  // The generator uses them: sequences change with nonlinear_seed but keep W and s_1.
  cfg.dim = 10;
  reseeded.dim = 10;
  const Drawn s1 = draw_one(cfg, 5, 0, 0);
  const Drawn s2 = draw_one(reseeded, 5, 0, 0);
  EXPECT_TRUE(bit_equal(s1.w, s2.w));
  EXPECT_TRUE(std::equal(s1.hidden.begin(), s1.hidden.begin() + 10, s2.hidden.begin()));
  EXPECT_FALSE(bit_equal(s1.hidden, s2.hidden));
}

// ---------------------------------------------------------------------------------------------
// Fixed W (1c)

// Least-squares W_hat from noise-free sequences: stacked X rows s_k, Y rows s_{k+1},
// W_hat^T = argmin ||X M - Y||.
Eigen::MatrixXd recover_transition(const std::vector<double>& states, int batch, int seq_len,
                                   int d) {
  Eigen::MatrixXd x(batch * seq_len, d), y(batch * seq_len, d);
  for (int b = 0; b < batch; ++b) {
    const ConstMap s(states.data() + size_t(b) * (seq_len + 1) * d, seq_len + 1, d);
    x.middleRows(b * seq_len, seq_len) = s.topRows(seq_len);
    y.middleRows(b * seq_len, seq_len) = s.bottomRows(seq_len);
  }
  return x.colPivHouseholderQr().solve(y).transpose();
}

TEST(SequencesFixed, OneTransitionForAllSequencesStepsAndSeeds) {
  DataConfig cfg = config_of(DynamicsKind::Fixed);
  cfg.noise_std = 0.0;
  const int d = cfg.dim;
  const std::vector<double> w = fixed_transition(cfg);
  const ConstMap wm(w.data(), d, d);
  ASSERT_LT((wm * wm.transpose() - Eigen::MatrixXd::Identity(d, d)).cwiseAbs().maxCoeff(), 1e-12);
  for (uint64_t seed : {0, 1, 77}) {
    for (uint64_t step : {0, 3}) {
      // Recovered from the data alone.
      const std::vector<double> states = sample_states(cfg, seed, RngPurpose::TrainData, step, 4);
      const Eigen::MatrixXd w_hat = recover_transition(states, 4, cfg.seq_len, d);
      EXPECT_LT((w_hat - wm).cwiseAbs().maxCoeff(), 1e-8) << "seed " << seed << " step " << step;
      // And reported through the out pointer.
      for (uint64_t b : {0, 2}) EXPECT_TRUE(bit_equal(draw_one(cfg, seed, step, b).w, w));
    }
  }
  // Other sequences still differ (s_1 and noise are per sequence).
  EXPECT_FALSE(bit_equal(draw_one(cfg, 0, 0, 0).hidden, draw_one(cfg, 0, 0, 1).hidden));
  // A Linear config draws its own W per sequence from the same stream.
  const Drawn linear = draw_one(config_of(DynamicsKind::Linear), 0, 0, 0);
  EXPECT_GT((ConstMap(linear.w.data(), d, d) - wm).cwiseAbs().maxCoeff(), 0.1);
  // fixed_w_seed selects the matrix.
  DataConfig reseeded = cfg;
  reseeded.fixed_w_seed = 43;
  EXPECT_GT((ConstMap(fixed_transition(reseeded).data(), d, d) - wm).cwiseAbs().maxCoeff(), 0.1);
  EXPECT_TRUE(bit_equal(w, shared_dynamics(cfg).fixed_w));
}

// With noise the fixed kind is the linear recursion around the shared W.
TEST(SequencesFixed, ResidualIsTransitionNoise) {
  DataConfig cfg = config_of(DynamicsKind::Fixed);
  cfg.noise_std = 0.02;
  const int d = cfg.dim;
  const std::vector<double> w = fixed_transition(cfg);
  const ConstMap wm(w.data(), d, d);
  constexpr int kBatch = 64;
  const std::vector<double> states = sample_states(cfg, 12, RngPurpose::TestData, 1, kBatch);
  std::vector<double> residuals;
  for (int b = 0; b < kBatch; ++b) {
    const ConstMap x(states.data() + size_t(b) * (cfg.seq_len + 1) * d, cfg.seq_len + 1, d);
    for (int k = 0; k < cfg.seq_len; ++k) {
      const Eigen::VectorXd r = x.row(k + 1).transpose() - wm * x.row(k).transpose();
      residuals.insert(residuals.end(), r.data(), r.data() + d);
    }
  }
  const Moments mo = moments(residuals);
  EXPECT_NEAR(mo.std_dev, cfg.noise_std, 0.03 * cfg.noise_std);
}

// ---------------------------------------------------------------------------------------------
// Partial observations (1d)

TEST(SequencesPartialObs, EyeObservationWithoutNoiseIsTheHiddenState) {
  for (DynamicsKind kind : {DynamicsKind::Linear, DynamicsKind::Contracting, DynamicsKind::Fixed}) {
    DataConfig plain = config_of(kind);
    DataConfig cfg = plain;
    cfg.obs_dim = cfg.dim;
    cfg.eye_obs = true;
    const SequenceBatch batch = sample_sequences(cfg, 8, RngPurpose::TrainData, 2, 5);
    EXPECT_EQ(batch.obs_dim, cfg.dim);
    ASSERT_EQ(batch.observed.size(), batch.hidden.size());
    for (size_t i = 0; i < batch.hidden.size(); ++i) {
      ASSERT_EQ(batch.observed[i], batch.hidden[i]) << dynamics_name(kind) << " " << i;
    }
    // The observation draws come after the state draws: hidden states do not change.
    EXPECT_TRUE(bit_equal(batch.hidden, sample_states(plain, 8, RngPurpose::TrainData, 2, 5)));
    const Drawn one = draw_one(cfg, 8, 0, 0);
    EXPECT_TRUE(bit_equal(one.c, [&] {
      std::vector<double> eye(size_t(cfg.dim) * cfg.dim, 0.0);
      for (int i = 0; i < cfg.dim; ++i) eye[size_t(i) * cfg.dim + i] = 1.0;
      return eye;
    }()));
  }
}

// o_t - C s_t has std noise_obs; C is redrawn per sequence; hidden states are unaffected.
TEST(SequencesPartialObs, ObservationNoiseHasStatedStd) {
  for (DynamicsKind kind : {DynamicsKind::Linear, DynamicsKind::Contracting, DynamicsKind::Fixed}) {
    DataConfig cfg = config_of(kind);
    cfg.obs_dim = 5;
    cfg.noise_obs = 0.1;
    const int d = cfg.dim;
    const int m = cfg.obs_dim;
    std::vector<double> residuals;
    std::vector<double> first_c;
    for (uint64_t b = 0; b < 64; ++b) {
      const Drawn s = draw_one(cfg, 4, 0, b);
      if (b == 0) first_c = s.c;
      if (b == 1) {
        EXPECT_FALSE(bit_equal(first_c, s.c));
      }
      const ConstMap c(s.c.data(), m, d);
      const ConstMap x(s.hidden.data(), cfg.seq_len + 1, d);
      const ConstMap o(s.observed.data(), cfg.seq_len + 1, m);
      const RowMatrix r = o - x * c.transpose();
      residuals.insert(residuals.end(), r.data(), r.data() + r.size());
    }
    // 16320 values: relative std of the std estimate 0.55%.
    const Moments mo = moments(residuals);
    EXPECT_NEAR(mo.std_dev, cfg.noise_obs, 0.04 * cfg.noise_obs) << dynamics_name(kind);
    EXPECT_LT(std::abs(mo.mean), 0.004) << dynamics_name(kind);
  }
}

// C ~ 0.5 N(0, 1): entries have mean 0 and variance 0.25.
TEST(SequencesPartialObs, ObservationMatrixHasVarianceQuarter) {
  DataConfig cfg = config_of(DynamicsKind::Linear);
  cfg.obs_dim = 5;
  std::vector<double> entries;
  for (uint64_t b = 0; b < 200; ++b) {
    const Drawn s = draw_one(cfg, 13, 0, b);
    entries.insert(entries.end(), s.c.begin(), s.c.end());
    // Without observation noise o_t = C s_t exactly.
    const ConstMap c(s.c.data(), cfg.obs_dim, cfg.dim);
    const ConstMap x(s.hidden.data(), cfg.seq_len + 1, cfg.dim);
    const ConstMap o(s.observed.data(), cfg.seq_len + 1, cfg.obs_dim);
    ASSERT_LT((o - x * c.transpose()).cwiseAbs().maxCoeff(), 1e-12);
  }
  // 10000 entries: the variance estimate has std 0.0035, the mean 0.005.
  const Moments mo = moments(entries);
  EXPECT_NEAR(mo.std_dev * mo.std_dev, 0.25, 0.025);
  EXPECT_LT(std::abs(mo.mean), 0.025);
}

TEST(SequencesPartialObs, ShapesFollowObsDim) {
  for (int obs_dim : {3, 10, 15}) {
    DataConfig cfg = config_of(DynamicsKind::Contracting);
    cfg.obs_dim = obs_dim;
    cfg.noise_obs = 0.01;
    constexpr int kBatch = 3;
    const SequenceBatch batch = sample_sequences(cfg, 1, RngPurpose::TestData, 0, kBatch);
    EXPECT_EQ(batch.batch, kBatch);
    EXPECT_EQ(batch.seq_len, cfg.seq_len);
    EXPECT_EQ(batch.dim, cfg.dim);
    EXPECT_EQ(batch.obs_dim, obs_dim);
    EXPECT_EQ(observed_dim(cfg), obs_dim);
    EXPECT_EQ(batch.observed.size(), size_t(kBatch) * (cfg.seq_len + 1) * obs_dim);
    EXPECT_EQ(batch.hidden.size(), size_t(kBatch) * (cfg.seq_len + 1) * cfg.dim);
    EXPECT_TRUE(bit_equal(batch.observed, sample_states(cfg, 1, RngPurpose::TestData, 0, kBatch)));
  }
  EXPECT_EQ(observed_dim(DataConfig{}), 10);
}

// One observation-noise draw per state: the label at t is o_{t+1}, the same vector (and noise)
// as the input at t + 1.
TEST(SequencesPartialObs, LabelSharesNoiseWithNextInput) {
  DataConfig cfg = config_of(DynamicsKind::Linear);
  cfg.obs_dim = 4;
  cfg.noise_obs = 0.3;
  const int m = cfg.obs_dim;
  const int t_len = cfg.seq_len;
  const Drawn s = draw_one(cfg, 2, 0, 0);
  std::vector<double> tokens(size_t(t_len) * m), labels(size_t(t_len) * m);
  build_raw_tokens(s.observed.data(), 1, t_len, m, tokens.data(), labels.data());
  const ConstMap c(s.c.data(), m, cfg.dim);
  const ConstMap x(s.hidden.data(), t_len + 1, cfg.dim);
  for (int k = 0; k + 1 < t_len; ++k) {
    for (int i = 0; i < m; ++i) {
      ASSERT_EQ(labels[size_t(k) * m + i], tokens[size_t(k + 1) * m + i]);
      // Noise of the label at t and of the input at t + 1 (both against C s_{t+1}).
      const double clean = c.row(i).dot(x.row(k + 1));
      EXPECT_EQ(labels[size_t(k) * m + i] - clean, tokens[size_t(k + 1) * m + i] - clean);
    }
  }
  // The noise is really there: residuals are of order noise_obs, not zero.
  const RowMatrix r = ConstMap(s.observed.data(), t_len + 1, m) - x * c.transpose();
  EXPECT_GT(r.cwiseAbs().maxCoeff(), 0.1);
}

// ---------------------------------------------------------------------------------------------
// Determinism and validation

TEST(SequencesDeterminism, EveryKindIsThreadCountIndependent) {
  std::vector<DataConfig> configs;
  for (DynamicsKind kind : {DynamicsKind::Linear, DynamicsKind::Contracting,
                            DynamicsKind::Nonlinear, DynamicsKind::Fixed}) {
    DataConfig cfg = config_of(kind);
    configs.push_back(cfg);
    if (kind == DynamicsKind::Nonlinear) continue;
    cfg.obs_dim = 6;
    cfg.noise_obs = 0.05;
    configs.push_back(cfg);
  }
  constexpr int kBatch = 13;  // not a multiple of the thread count
  const testing::ThreadCountGuard guard;
  for (const DataConfig& cfg : configs) {
    const std::string what =
        std::string(dynamics_name(cfg.kind)) + " obs_dim " + std::to_string(cfg.obs_dim);
    omp_set_num_threads(1);
    const SequenceBatch one = sample_sequences(cfg, 5, RngPurpose::TrainData, 11, kBatch);
    for (int threads : {2, 3}) {
      omp_set_num_threads(threads);
      const SequenceBatch many = sample_sequences(cfg, 5, RngPurpose::TrainData, 11, kBatch);
      EXPECT_TRUE(bit_equal(one.hidden, many.hidden)) << what << ", " << threads << " threads";
      EXPECT_TRUE(bit_equal(one.observed, many.observed)) << what << ", " << threads;
    }
    // Row b is the stream Rng{seed, purpose, step, b}.
    const size_t per_hidden = size_t(cfg.seq_len + 1) * cfg.dim;
    const size_t per_observed = size_t(cfg.seq_len + 1) * observed_dim(cfg);
    for (uint64_t b : {0, 7, 12}) {
      const Drawn s = draw_one(cfg, 5, 11, b);
      EXPECT_EQ(0, std::memcmp(s.hidden.data(), one.hidden.data() + b * per_hidden,
                               per_hidden * sizeof(double)))
          << what << " row " << b;
      EXPECT_EQ(0, std::memcmp(s.observed.data(), one.observed.data() + b * per_observed,
                               per_observed * sizeof(double)))
          << what << " row " << b;
    }
    EXPECT_FALSE(bit_equal(one.observed,
                           sample_sequences(cfg, 6, RngPurpose::TrainData, 11, kBatch).observed))
        << what;
  }
}

// Every bad field throws Error naming the config key.
TEST(SequencesValidation, EachBadFieldNamesItsKey) {
  struct Case {
    std::string key;
    std::function<void(DataConfig&)> edit;
  };
  const std::vector<Case> cases = {
      {"data.dim", [](DataConfig& c) { c.dim = 0; }},
      {"data.seq_len", [](DataConfig& c) { c.seq_len = 0; }},
      {"data.noise_std", [](DataConfig& c) { c.noise_std = -1.0; }},
      {"data.state_clip", [](DataConfig& c) { c.state_clip = 0.0; }},
      {"data.init_range", [](DataConfig& c) { c.init_range = INFINITY; }},
      {"data.kind", [](DataConfig& c) { c.kind = static_cast<DynamicsKind>(17); }},
      {"data.min_eig", [](DataConfig& c) { c.min_eig = NAN; }},
      {"data.max_eig", [](DataConfig& c) { c.max_eig = INFINITY; }},
      {"data.min_eig", [](DataConfig& c) { c.min_eig = 0.95; }},
      {"data.nonlinear_hidden", [](DataConfig& c) { c.nonlinear_hidden = -1; }},
      {"data.obs_dim", [](DataConfig& c) { c.obs_dim = -2; }},
      {"data.eye_obs", [](DataConfig& c) { c.eye_obs = true; }},
      {"data.eye_obs",
       [](DataConfig& c) {
         c.eye_obs = true;
         c.obs_dim = 5;
       }},
      {"data.noise_obs",
       [](DataConfig& c) {
         c.obs_dim = 5;
         c.noise_obs = -0.1;
       }},
      {"data.noise_obs",
       [](DataConfig& c) {
         c.obs_dim = 5;
         c.noise_obs = NAN;
       }},
      {"data.noise_obs", [](DataConfig& c) { c.noise_obs = 0.1; }},
      {"data.obs_dim",
       [](DataConfig& c) {
         c.kind = DynamicsKind::Nonlinear;
         c.obs_dim = 5;
       }},
  };
  for (const Case& c : cases) {
    DataConfig cfg;
    c.edit(cfg);
    try {
      validate(cfg);
      ADD_FAILURE() << "no error for " << c.key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.key), std::string::npos)
          << "message '" << e.what() << "' does not name " << c.key;
      EXPECT_EQ(e.exit_code(), 2);
    }
    // The generators validate too.
    EXPECT_THROW(sample_sequences(cfg, 0, RngPurpose::TrainData, 0, 1), Error) << c.key;
  }
  // Accepted: eigenvalues outside (0, 1), equal bounds, obs_dim > dim, eye_obs with noise.
  const auto ok = [](std::function<void(DataConfig&)> edit) {
    DataConfig cfg;
    edit(cfg);
    return cfg;
  };
  EXPECT_NO_THROW(validate(ok([](DataConfig& c) {
    c.min_eig = -1.5;
    c.max_eig = 1.5;
  })));
  EXPECT_NO_THROW(validate(ok([](DataConfig& c) { c.min_eig = c.max_eig = 0.5; })));
  EXPECT_NO_THROW(validate(ok([](DataConfig& c) { c.obs_dim = 25; })));
  EXPECT_NO_THROW(validate(ok([](DataConfig& c) {
    c.obs_dim = 10;
    c.eye_obs = true;
    c.noise_obs = 0.5;
  })));
  EXPECT_NO_THROW(validate(ok([](DataConfig& c) {
    c.kind = DynamicsKind::Nonlinear;
    c.nonlinear_hidden = 3;
  })));
  // sample_linear_sequence is the Linear kind only.
  std::vector<double> buf(size_t(51) * 10);
  Rng rng{1};
  EXPECT_THROW(sample_linear_sequence(config_of(DynamicsKind::Fixed), rng, buf.data()), Error);
}

TEST(SequencesValidation, DynamicsNamesRoundTrip) {
  for (DynamicsKind kind : {DynamicsKind::Linear, DynamicsKind::Contracting,
                            DynamicsKind::Nonlinear, DynamicsKind::Fixed}) {
    EXPECT_EQ(parse_dynamics(dynamics_name(kind)), kind);
  }
  EXPECT_EQ(dynamics_name(DynamicsKind::Linear), "linear");
  EXPECT_EQ(dynamics_name(DynamicsKind::Contracting), "contracting");
  EXPECT_EQ(dynamics_name(DynamicsKind::Nonlinear), "nonlinear");
  EXPECT_EQ(dynamics_name(DynamicsKind::Fixed), "fixed");
  EXPECT_EQ(DataConfig{}.kind, DynamicsKind::Linear);
  for (const char* bad : {"Linear", "linaer", "", "contracting "}) {
    try {
      parse_dynamics(bad);
      ADD_FAILURE() << "no error for '" << bad << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("linear, contracting, nonlinear, fixed"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace mesalab
