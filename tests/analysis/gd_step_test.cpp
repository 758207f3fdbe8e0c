// One GD step from a learned W0: the fit is the direct least-squares regression at its eta,
// no nearby eta does better, W0 = 0 is GD-1, a fixed transition is learned to the noise floor,
// and on Haar data (where W -> -W is a symmetry) the best W0 is near 0.
#include "analysis/gd_step.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "analysis/baselines.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "data/sequences.hpp"

namespace mesalab {
namespace {

std::vector<double> states_of(DataConfig data, int batch, uint64_t seed) {
  return sample_states(data, seed, RngPurpose::Tuning, 0, batch);
}

TEST(GdStep, FitIsTheDirectRegressionAtItsEtaAndEtaIsOptimal) {
  DataConfig data;
  data.dim = 3;
  data.seq_len = 8;
  const int D = 3, T = 8, B = 40;
  const std::vector<double> states = states_of(data, B, 2);
  const GdStepFit fit = fit_gd_step(states.data(), B, T, D);
  ASSERT_EQ(fit.w0.size(), size_t(D * D));
  // Rows (b, t): z_t^T = s_t^T (I - eta C_pp(t)), target y_t - eta g_t, by explicit sums.
  Eigen::MatrixXd z(B * T, D), y(B * T, D);
  for (int b = 0; b < B; ++b) {
    const double* s = states.data() + size_t(b) * (T + 1) * D;
    auto row = [&](int k) { return Eigen::Map<const Eigen::RowVectorXd>(s + size_t(k) * D, D); };
    for (int k = 0; k < T; ++k) {
      Eigen::MatrixXd pp = Eigen::MatrixXd::Zero(D, D), ps = pp;
      for (int i = 0; i < k; ++i) {
        pp += row(i).transpose() * row(i);
        ps += row(i).transpose() * row(i + 1);
      }
      z.row(b * T + k) = row(k) - fit.eta * row(k) * pp;
      y.row(b * T + k) = row(k + 1) - fit.eta * row(k) * ps;
    }
  }
  const Eigen::MatrixXd w0 = z.colPivHouseholderQr().solve(y);
  for (int j = 0; j < D; ++j)
    for (int d = 0; d < D; ++d) EXPECT_NEAR(fit.w0[size_t(j * D + d)], w0(j, d), 1e-8);
  const double loss = (z * w0 - y).squaredNorm() / (2.0 * B * T);
  EXPECT_NEAR(fit.loss, loss, 1e-10);
  EXPECT_NEAR(curve_mean(gd_step_curve(fit, states.data(), B, T, D)), loss, 1e-10);
  for (double delta : {1e-3, -1e-3})
    EXPECT_GE(fit_gd_step_at(states.data(), B, T, D, fit.eta * (1 + delta)).loss, fit.loss);
  EXPECT_THROW(fit_gd_step(states.data(), B, 1, D), Error);
}

TEST(GdStep, ZeroW0IsGd1) {
  DataConfig data;
  data.dim = 4;
  data.seq_len = 10;
  const std::vector<double> states = states_of(data, 16, 5);
  const GdStepFit gd{0.03, 4, std::vector<double>(16, 0.0), 0.0};
  const auto a = gd_step_curve(gd, states.data(), 16, 10, 4);
  const auto b = gd1_curve(states.data(), 16, 10, 4, 0.03);
  for (int t = 0; t < 10; ++t) EXPECT_NEAR(a[size_t(t)], b[size_t(t)], 1e-12) << t;
}

TEST(GdStep, LearnsAFixedTransitionAndStaysNearZeroOnHaarData) {
  DataConfig data;
  data.dim = 4;
  data.seq_len = 20;
  data.kind = DynamicsKind::Fixed;
  const int D = 4, T = 20, B = 256;
  const std::vector<double> fixed = states_of(data, B, 1);
  const GdStepFit f = fit_gd_step(fixed.data(), B, T, D);
  EXPECT_LT(f.loss, 1e-3) << "the noise floor is D sigma^2 / 2 = 2e-4";
  const std::vector<double> w = fixed_transition(data);  // column form: W0 -> W^T
  double err = 0.0, norm = 0.0;
  for (int j = 0; j < D; ++j)
    for (int d = 0; d < D; ++d) {
      err += std::pow(f.w0[size_t(j * D + d)] - w[size_t(d * D + j)], 2);
      norm += w[size_t(d * D + j)] * w[size_t(d * D + j)];
    }
  EXPECT_LT(std::sqrt(err / norm), 0.05);

  data.kind = DynamicsKind::Linear;
  // W -> -W leaves Haar data invariant, so the population optimum is W0 = 0: the fitted W0 is
  // sampling noise and shrinks like 1/sqrt(sequences).
  auto w0_norm = [&](int batch, GdStepFit* fit) {
    const std::vector<double> s = states_of(data, batch, 1);
    *fit = fit_gd_step(s.data(), batch, T, D);
    double sum = 0.0;
    for (double v : fit->w0) sum += v * v;
    return std::sqrt(sum);
  };
  GdStepFit h1, h;
  const double n1 = w0_norm(B, &h1), n4 = w0_norm(4 * B, &h);
  EXPECT_LT(n1, 0.3);
  EXPECT_LT(n4, 0.75 * n1);
  const std::vector<double> haar = states_of(data, 4 * B, 1);
  const double gd_eta = tune_gd_eta(haar.data(), 4 * B, T, D);
  EXPECT_NEAR(h.eta, gd_eta, 0.1 * gd_eta);
  EXPECT_LE(h.loss, curve_mean(gd1_curve(haar.data(), 4 * B, T, D, gd_eta)) + 1e-12);
}

}  // namespace
}  // namespace mesalab
