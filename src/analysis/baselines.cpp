#include "analysis/baselines.hpp"

#include <Eigen/Dense>
#include <cmath>
#include <cstddef>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "data/tokens.hpp"

namespace mesalab {

namespace {

void check_shape(const char* what, int batch, int seq_len, int dim) {
  if (batch < 1 || seq_len < 1 || dim < 1) {
    fail("{}: batch, seq_len and dim must be >= 1, got {}, {}, {}", what, batch, seq_len, dim);
  }
}

// loss_t = sum_b err_b[t-1] / (2B), over b in increasing order (independent of the schedule).
std::vector<double> reduce_per_step(const std::vector<double>& errors, int batch, int seq_len) {
  std::vector<double> curve(seq_len, 0.0);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < seq_len; ++t) curve[t] += errors[size_t(b) * seq_len + t];
  }
  for (double& v : curve) v /= 2.0 * batch;
  return curve;
}

// Runs seq_errors(seq, err) on every sequence, where seq is the (T + 1, D) state matrix and
// err[t-1] must receive sum_d (pred_t - s_{t+1})_d^2, then reduces
//   loss_t = sum_b err_b[t-1] / (2B)
// over b in increasing order, so the result is independent of the OpenMP schedule.
template <class SeqErrors>
std::vector<double> per_step_curve(const double* states, int batch, int seq_len, int dim,
                                   const SeqErrors& seq_errors) {
  const size_t per_seq = size_t(seq_len + 1) * dim;
  std::vector<double> errors(size_t(batch) * seq_len);
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * per_seq, seq_len + 1, dim);
    seq_errors(seq, errors.data() + size_t(b) * seq_len);
  });
  return reduce_per_step(errors, batch, seq_len);
}

void check_ridge(const char* what, double ridge) {
  if (!(ridge > 0.0) || !std::isfinite(ridge)) {
    fail("{}: ridge must be finite and > 0, got {}", what, ridge);
  }
}

// err[k] = |C (A + ridge I)^{-1} phi_t - s_{t+1}|^2 for t = k + 1, with A and C running sums
// over the pairs (phi_i, s_{i+1}), i < t - lag: O(F^3) per step instead of re-solving the
// stacked pair system from scratch. phi: (T, F), row k = phi_{k+1}; seq: (T + 1, D).
void feature_least_squares_errors(const Eigen::Ref<const RowMatrix<double>>& phi,
                                  const ConstSequence& seq, double ridge, int lag, double* err) {
  const int seq_len = int(phi.rows()), width = int(phi.cols()), dim = int(seq.cols());
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(width, width);
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(dim, width);
  Eigen::MatrixXd reg(width, width);
  Eigen::VectorXd x(width), pred(dim);
  Eigen::LLT<Eigen::MatrixXd> llt(width);
  const Eigen::MatrixXd ridge_eye = ridge * Eigen::MatrixXd::Identity(width, width);
  for (int k = 0; k < seq_len; ++k) {
    const int newest = k - 1 - lag;
    if (newest >= 0) {
      const auto phi_i = phi.row(newest).transpose();
      a.noalias() += phi_i * phi_i.transpose();
      c.noalias() += seq.row(newest + 1).transpose() * phi_i.transpose();
    }
    // A + ridge I is symmetric positive definite for ridge > 0, so Cholesky applies.
    reg = a + ridge_eye;
    llt.compute(reg);
    x = llt.solve(phi.row(k).transpose());
    pred.noalias() = c * x;
    err[k] = (pred - seq.row(k + 1).transpose()).squaredNorm();
  }
}

}  // namespace

// C is accumulated after use, so the pair (s_t, s_{t+1}) never informs the prediction at t.
RowMatrix<double> gd_directions(const ConstSequence& seq) {
  const int seq_len = int(seq.rows()) - 1;
  const int dim = int(seq.cols());
  RowMatrix<double> g(seq_len, dim);
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(dim, dim);
  for (int k = 0; k < seq_len; ++k) {
    g.row(k).noalias() = seq.row(k) * c.transpose();
    c.noalias() += seq.row(k + 1).transpose() * seq.row(k);
  }
  return g;
}

std::vector<double> zero_predictor_curve(const double* states, int batch, int seq_len, int dim) {
  check_shape("zero_predictor_curve", batch, seq_len, dim);
  return per_step_curve(states, batch, seq_len, dim,
                        [seq_len](const ConstSequence& seq, double* err) {
                          for (int k = 0; k < seq_len; ++k) err[k] = seq.row(k + 1).squaredNorm();
                        });
}

std::vector<double> copy_predictor_curve(const double* states, int batch, int seq_len, int dim) {
  check_shape("copy_predictor_curve", batch, seq_len, dim);
  return per_step_curve(states, batch, seq_len, dim,
                        [seq_len](const ConstSequence& seq, double* err) {
                          for (int k = 0; k < seq_len; ++k)
                            err[k] = (seq.row(k + 1) - seq.row(k)).squaredNorm();
                        });
}

std::vector<double> least_squares_curve(const double* states, int batch, int seq_len, int dim,
                                        double ridge, bool include_latest_pair) {
  check_shape("least_squares_curve", batch, seq_len, dim);
  check_ridge("least_squares_curve", ridge);
  const int lag = include_latest_pair ? 0 : 1;
  return per_step_curve(states, batch, seq_len, dim, [=](const ConstSequence& seq, double* err) {
    feature_least_squares_errors(seq.topRows(seq_len), seq, ridge, lag, err);
  });
}

std::vector<double> feature_least_squares_curve(const double* features, int width,
                                                const double* states, int batch, int seq_len,
                                                int dim, double ridge, bool include_latest_pair) {
  check_shape("feature_least_squares_curve", batch, seq_len, dim);
  check_ridge("feature_least_squares_curve", ridge);
  if (width < 1) fail("feature_least_squares_curve: width must be >= 1, got {}", width);
  const size_t per_seq = size_t(seq_len + 1) * dim;
  const int lag = include_latest_pair ? 0 : 1;
  std::vector<double> errors(size_t(batch) * seq_len);
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * per_seq, seq_len + 1, dim);
    const ConstSequence phi(features + size_t(b) * seq_len * width, seq_len, width);
    feature_least_squares_errors(phi, seq, ridge, lag, errors.data() + size_t(b) * seq_len);
  });
  return reduce_per_step(errors, batch, seq_len);
}

std::vector<double> delay_least_squares_curve(const double* observations, int batch, int seq_len,
                                              int obs_dim, int width, double ridge) {
  check_shape("delay_least_squares_curve", batch, seq_len, obs_dim);
  std::vector<double> delay(size_t(batch) * seq_len * width);
  std::vector<double> labels(size_t(batch) * seq_len * obs_dim);
  build_delay_tokens(observations, batch, seq_len, obs_dim, width, delay.data(), labels.data());
  return feature_least_squares_curve(delay.data(), width, observations, batch, seq_len, obs_dim,
                                     ridge);
}

std::vector<double> true_feature_least_squares_curve(const NonlinearFeatures& features,
                                                     const double* states, int batch, int seq_len,
                                                     double ridge) {
  const int dim = features.dim;
  check_shape("true_feature_least_squares_curve", batch, seq_len, dim);
  const size_t per_seq = size_t(seq_len + 1) * dim;
  std::vector<double> phi(size_t(batch) * seq_len * dim);
  parallel_for(batch, [&](int b) {
    for (int k = 0; k < seq_len; ++k)
      nonlinear_feature_map(features, states + b * per_seq + size_t(k) * dim, nullptr,
                            phi.data() + (size_t(b) * seq_len + k) * dim);
  });
  return feature_least_squares_curve(phi.data(), dim, states, batch, seq_len, dim, ridge);
}

// pred_t = eta C_t s_t.
std::vector<double> gd1_curve(const double* states, int batch, int seq_len, int dim, double eta) {
  check_shape("gd1_curve", batch, seq_len, dim);
  return per_step_curve(states, batch, seq_len, dim,
                        [seq_len, eta](const ConstSequence& seq, double* err) {
                          const RowMatrix<double> g = gd_directions(seq);
                          for (int k = 0; k < seq_len; ++k) {
                            err[k] = (eta * g.row(k) - seq.row(k + 1)).squaredNorm();
                          }
                        });
}

// eta* = sum_{b,t} g.y / sum_{b,t} |g|^2: the stationary point of the quadratic
// sum_{b,t} |eta g - y|^2, a minimum because its leading coefficient sum |g|^2 is > 0.
double tune_gd_eta(const double* states, int batch, int seq_len, int dim) {
  check_shape("tune_gd_eta", batch, seq_len, dim);
  const size_t per_seq = size_t(seq_len + 1) * dim;
  std::vector<double> gy(batch), gg(batch);
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * per_seq, seq_len + 1, dim);
    const RowMatrix<double> g = gd_directions(seq);
    gy[b] = (g.array() * seq.bottomRows(seq_len).array()).sum();
    gg[b] = g.squaredNorm();
  });
  double num = 0.0;
  double den = 0.0;
  for (int b = 0; b < batch; ++b) {
    num += gy[b];
    den += gg[b];
  }
  if (!(den > 0.0)) {
    fail(
        "tune_gd_eta: the GD-1 prediction is identically zero (seq_len {} needs to be >= 2 "
        "and states nonzero), so eta is undetermined",
        seq_len);
  }
  return num / den;
}

BaselineReport run_baselines(const DataConfig& cfg, uint64_t seed, int test_batches, int batch_size,
                             double ridge, int delay_width) {
  validate(cfg);
  if (test_batches < 1) fail("run_baselines: test_batches must be >= 1, got {}", test_batches);
  if (batch_size < 1) fail("run_baselines: batch_size must be >= 1, got {}", batch_size);
  if (!(ridge > 0.0) || !std::isfinite(ridge)) {
    fail("run_baselines: ridge must be finite and > 0, got {}", ridge);
  }
  const int t_len = cfg.seq_len;
  const int d = observed_dim(cfg);
  const bool observed = cfg.obs_dim > 0, nonlinear = cfg.kind == DynamicsKind::Nonlinear;
  if (observed && delay_width < d)
    fail("run_baselines: the delay vector's width ({}) must hold one observation ({})", delay_width,
         d);
  const NonlinearFeatures features = nonlinear ? nonlinear_features(cfg) : NonlinearFeatures{};
  // The tuning sequences come from their own stream purpose, so eta never sees the test set.
  constexpr int kTuningBatch = 512;
  const std::vector<double> tuning = sample_states(cfg, seed, RngPurpose::Tuning, 0, kTuningBatch);

  BaselineReport report;
  report.gd_eta = tune_gd_eta(tuning.data(), kTuningBatch, t_len, d);
  report.curves = {{"zero", std::vector<double>(t_len, 0.0)},
                   {"copy", std::vector<double>(t_len, 0.0)},
                   {"least_squares", std::vector<double>(t_len, 0.0)},
                   {"least_squares_all_pairs", std::vector<double>(t_len, 0.0)},
                   {"gd1", std::vector<double>(t_len, 0.0)}};
  if (observed) report.curves.push_back({"least_squares_delay", std::vector<double>(t_len, 0.0)});
  if (nonlinear)
    report.curves.push_back({"least_squares_true_features", std::vector<double>(t_len, 0.0)});
  for (int step = 0; step < test_batches; ++step) {
    const std::vector<double> states =
        sample_states(cfg, seed, RngPurpose::TestData, uint64_t(step), batch_size);
    const double* s = states.data();
    std::vector<std::vector<double>> batch_curves = {
        zero_predictor_curve(s, batch_size, t_len, d),
        copy_predictor_curve(s, batch_size, t_len, d),
        least_squares_curve(s, batch_size, t_len, d, ridge),
        least_squares_curve(s, batch_size, t_len, d, ridge, true),
        gd1_curve(s, batch_size, t_len, d, report.gd_eta)};
    if (observed)
      batch_curves.push_back(
          delay_least_squares_curve(s, batch_size, t_len, d, delay_width, ridge));
    if (nonlinear)
      batch_curves.push_back(
          true_feature_least_squares_curve(features, s, batch_size, t_len, ridge));
    for (size_t i = 0; i < report.curves.size(); ++i) {
      for (int t = 0; t < t_len; ++t) report.curves[i].second[t] += batch_curves[i][t];
    }
  }
  for (auto& [name, curve] : report.curves) {
    for (double& v : curve) v /= test_batches;
  }
  return report;
}

nlohmann::json baseline_report_json(const BaselineReport& report) {
  nlohmann::json baselines = nlohmann::json::array();
  for (const auto& [name, curve] : report.curves) {
    baselines.push_back({{"name", name}, {"mean_loss", curve_mean(curve)}, {"curve", curve}});
  }
  return {{"gd_eta", report.gd_eta}, {"baselines", baselines}};
}

}  // namespace mesalab
