#include "data/sequences.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

TEST(HaarOrthogonal, IsOrthogonalToMachinePrecision) {
  for (int dim : {1, 2, 3, 10}) {
    std::vector<double> w(size_t(dim) * dim);
    for (uint64_t n = 0; n < 200; ++n) {
      Rng rng{11, uint64_t(RngPurpose::TrainData), n};
      sample_haar_orthogonal(dim, rng, w.data());
      const Eigen::Map<const RowMatrix> m(w.data(), dim, dim);
      const Eigen::MatrixXd eye = Eigen::MatrixXd::Identity(dim, dim);
      ASSERT_LT((m * m.transpose() - eye).cwiseAbs().maxCoeff(), 1e-12) << "dim " << dim;
      ASSERT_LT((m.transpose() * m - eye).cwiseAbs().maxCoeff(), 1e-12) << "dim " << dim;
    }
  }
}

// Haar measure on O(D): det = +1 and -1 equally often, E[W] = 0, E[W_ij^2] = 1/D and
// E[tr W] = 0. A QR without the sign(diag R) correction has E[W_ii] ~ -0.18 at D = 10 with
// Eigen's Householder convention, which these checks reject.
TEST(HaarOrthogonal, DistributionIsHaar) {
  constexpr int kDim = 10;
  constexpr int kSamples = 2000;
  std::vector<double> w(kDim * kDim);
  Eigen::MatrixXd mean = Eigen::MatrixXd::Zero(kDim, kDim);
  Eigen::MatrixXd mean_sq = Eigen::MatrixXd::Zero(kDim, kDim);
  double mean_trace = 0.0;
  int positive_det = 0;
  for (int n = 0; n < kSamples; ++n) {
    Rng rng{12, uint64_t(RngPurpose::TrainData), uint64_t(n)};
    sample_haar_orthogonal(kDim, rng, w.data());
    const Eigen::Map<const RowMatrix> m(w.data(), kDim, kDim);
    const double det = m.determinant();
    ASSERT_NEAR(std::abs(det), 1.0, 1e-10);
    positive_det += det > 0.0;
    mean += m / kSamples;
    mean_sq += m.cwiseAbs2() / kSamples;
    mean_trace += m.trace() / kSamples;
  }
  // Binomial(2000, 1/2) has std 22: [850, 1150] is a 7-sigma band.
  EXPECT_GT(positive_det, 850);
  EXPECT_LT(positive_det, kSamples - 850);
  // std of one mean entry is sqrt(0.1 / 2000) = 0.007; std of the mean trace is 0.022.
  EXPECT_LT(mean.cwiseAbs().maxCoeff(), 0.04);
  EXPECT_LT(std::abs(mean_trace), 0.12);
  // E[W_ij^2] = 1/D; the per-entry estimate has std ~0.003.
  EXPECT_LT((mean_sq.array() - 1.0 / kDim).abs().maxCoeff(), 0.02);
}

TEST(LinearSequence, InitialStateIsUniform) {
  const DataConfig cfg;
  constexpr int kBatch = 1024;
  const std::vector<double> states = sample_states(cfg, 3, RngPurpose::TrainData, 0, kBatch);
  const size_t per_seq = size_t(cfg.seq_len + 1) * cfg.dim;
  double sum = 0.0;
  double sum_sq = 0.0;
  for (int b = 0; b < kBatch; ++b) {
    for (int d = 0; d < cfg.dim; ++d) {
      const double x = states[b * per_seq + d];
      ASSERT_GE(x, -1.0);
      ASSERT_LE(x, 1.0);
      sum += x;
      sum_sq += x * x;
    }
  }
  const double n = double(kBatch) * cfg.dim;
  const double mean = sum / n;
  const double var = sum_sq / n - mean * mean;
  // U[-1, 1]: mean 0 (estimate std 0.008), variance 1/3 (estimate std 0.004).
  EXPECT_LT(std::abs(mean), 0.04);
  EXPECT_NEAR(var, 1.0 / 3.0, 0.02);
}

// With W returned by the generator, s_{k+1} - W s_k is exactly the transition noise when no
// clipping occurs (|s| stays near 1 for the default config), so its std must be sigma.
TEST(LinearSequence, ResidualIsTransitionNoise) {
  DataConfig cfg;
  const int d = cfg.dim;
  std::vector<double> states(size_t(cfg.seq_len + 1) * d);
  std::vector<double> w(size_t(d) * d);
  double sum = 0.0;
  double sum_sq = 0.0;
  size_t n = 0;
  for (uint64_t seq = 0; seq < 64; ++seq) {
    Rng rng{5, uint64_t(RngPurpose::TrainData), 0, seq};
    sample_linear_sequence(cfg, rng, states.data(), w.data());
    const Eigen::Map<const RowMatrix> m(w.data(), d, d);
    const Eigen::Map<const RowMatrix> s(states.data(), cfg.seq_len + 1, d);
    ASSERT_LT(s.cwiseAbs().maxCoeff(), cfg.state_clip);
    for (int k = 0; k < cfg.seq_len; ++k) {
      const Eigen::VectorXd r = s.row(k + 1).transpose() - m * s.row(k).transpose();
      sum += r.sum();
      sum_sq += r.squaredNorm();
      n += size_t(d);
    }
  }
  const double mean = sum / double(n);
  const double std_dev = std::sqrt(sum_sq / double(n) - mean * mean);
  // n = 32000: the std estimate has relative std 0.4%, the mean has std 6e-5.
  EXPECT_NEAR(std_dev, cfg.noise_std, 0.03 * cfg.noise_std);
  EXPECT_LT(std::abs(mean), 3e-4);

  // Without noise the dynamics are exactly s_{k+1} = W s_k and |s_k| is conserved.
  cfg.noise_std = 0.0;
  Rng rng{5, uint64_t(RngPurpose::TrainData), 1, 0};
  sample_linear_sequence(cfg, rng, states.data(), w.data());
  const Eigen::Map<const RowMatrix> m(w.data(), d, d);
  const Eigen::Map<const RowMatrix> s(states.data(), cfg.seq_len + 1, d);
  for (int k = 0; k < cfg.seq_len; ++k) {
    EXPECT_LT((s.row(k + 1).transpose() - m * s.row(k).transpose()).cwiseAbs().maxCoeff(), 1e-12);
    EXPECT_NEAR(s.row(k + 1).norm(), s.row(0).norm(), 1e-12);
  }
}

// s_{k+1} is clipped to +-state_clip; s_1 is drawn from U[-r, r] and not clipped, as in the
// official generator.
TEST(LinearSequence, ClipsStatesAfterTheFirst) {
  DataConfig cfg;
  cfg.init_range = 30.0;
  cfg.state_clip = 10.0;
  constexpr int kBatch = 64;
  const std::vector<double> states = sample_states(cfg, 4, RngPurpose::TrainData, 0, kBatch);
  const size_t per_seq = size_t(cfg.seq_len + 1) * cfg.dim;
  int at_bound = 0;
  double max_initial = 0.0;
  for (int b = 0; b < kBatch; ++b) {
    for (size_t i = 0; i < per_seq; ++i) {
      const double x = states[b * per_seq + i];
      if (i < size_t(cfg.dim)) {
        max_initial = std::max(max_initial, std::abs(x));
        continue;
      }
      ASSERT_LE(std::abs(x), cfg.state_clip);
      at_bound += std::abs(x) == cfg.state_clip;
    }
  }
  EXPECT_GT(at_bound, 0);
  EXPECT_GT(max_initial, cfg.state_clip);

  // Default data never reaches the clip: |s_1|_inf <= 1 and orthogonal W keeps |s| ~ |s_1|.
  const std::vector<double> plain =
      sample_states(DataConfig{}, 4, RngPurpose::TrainData, 0, kBatch);
  for (double x : plain) ASSERT_LT(std::abs(x), 10.0);
}

// Row b of a batch is the documented recursion driven by its own stream
// Rng{seed, purpose, step, b}, rebuilt here independently of the generator: G from the first
// D*D normals, W = Q diag(sign R_jj) by Eigen's Householder QR, s_1 from the next D uniforms,
// then one noise normal per state component.
TEST(LinearSequence, BatchRowIsTheRecursionOfItsOwnStream) {
  const DataConfig cfg;
  constexpr int kBatch = 8;
  const int D = cfg.dim, T = cfg.seq_len;
  const std::vector<double> states = sample_states(cfg, 9, RngPurpose::TestData, 3, kBatch);
  for (int b = 0; b < kBatch; ++b) {
    Rng rng{9, uint64_t(RngPurpose::TestData), 3, uint64_t(b)};
    Eigen::MatrixXd g(D, D);
    for (int i = 0; i < D; ++i)
      for (int j = 0; j < D; ++j) g(i, j) = rng.normal();
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    Eigen::MatrixXd w = qr.householderQ();
    for (int j = 0; j < D; ++j)
      if (qr.matrixQR()(j, j) < 0.0) w.col(j) *= -1.0;
    Eigen::VectorXd s(D);
    for (int i = 0; i < D; ++i) s(i) = rng.uniform(-cfg.init_range, cfg.init_range);
    double worst = 0.0;
    for (int t = 0; t <= T; ++t) {
      for (int i = 0; i < D; ++i)
        worst = std::max(worst, std::abs(states[(size_t(b) * (T + 1) + t) * D + i] - s(i)));
      Eigen::VectorXd next = w * s;
      for (int i = 0; i < D; ++i)
        next(i) =
            std::clamp(next(i) + cfg.noise_std * rng.normal(), -cfg.state_clip, cfg.state_clip);
      s = next;
    }
    // Two QR algorithms agree to rounding; 50 orthogonal steps keep that at ~1e-13.
    EXPECT_LT(worst, 1e-11) << "sequence " << b;
  }
}

TEST(LinearSequence, DeterministicAndThreadCountIndependent) {
  const DataConfig cfg;
  constexpr int kBatch = 37;  // not a multiple of the thread count
  const auto draw = [&](uint64_t seed, RngPurpose purpose, uint64_t step) {
    return sample_states(cfg, seed, purpose, step, kBatch);
  };
  const std::vector<double> base = draw(1, RngPurpose::TrainData, 7);
  const size_t bytes = base.size() * sizeof(double);
  EXPECT_EQ(0, std::memcmp(base.data(), draw(1, RngPurpose::TrainData, 7).data(), bytes));
  EXPECT_NE(base, draw(1, RngPurpose::TrainData, 8));
  EXPECT_NE(base, draw(2, RngPurpose::TrainData, 7));
  EXPECT_NE(base, draw(1, RngPurpose::TestData, 7));

  const testing::ThreadCountGuard guard;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    EXPECT_EQ(0, std::memcmp(base.data(), draw(1, RngPurpose::TrainData, 7).data(), bytes))
        << threads << " threads";
  }
}

TEST(LinearSequence, RejectsBadInput) {
  const auto with = [](auto edit) {
    DataConfig cfg;
    edit(cfg);
    return cfg;
  };
  EXPECT_THROW(validate(with([](DataConfig& c) { c.dim = 0; })), Error);
  EXPECT_THROW(validate(with([](DataConfig& c) { c.seq_len = 0; })), Error);
  EXPECT_THROW(validate(with([](DataConfig& c) { c.noise_std = -0.1; })), Error);
  EXPECT_THROW(validate(with([](DataConfig& c) { c.state_clip = 0.0; })), Error);
  EXPECT_THROW(validate(with([](DataConfig& c) { c.init_range = NAN; })), Error);
  EXPECT_NO_THROW(validate(DataConfig{}));
  EXPECT_THROW(sample_states(DataConfig{}, 0, RngPurpose::TrainData, 0, 0), Error);
}

}  // namespace
}  // namespace mesalab
