#include "analysis/baselines.hpp"

#include <Eigen/Dense>
#include <cmath>
#include <cstddef>

#include "core/error.hpp"
#include "core/parallel.hpp"

namespace mesalab {

namespace {

void check_shape(const char* what, int batch, int seq_len, int dim) {
  if (batch < 1 || seq_len < 1 || dim < 1) {
    fail("{}: batch, seq_len and dim must be >= 1, got {}, {}, {}", what, batch, seq_len, dim);
  }
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
  std::vector<double> curve(seq_len, 0.0);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < seq_len; ++t) curve[t] += errors[size_t(b) * seq_len + t];
  }
  for (double& v : curve) v /= 2.0 * batch;
  return curve;
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

// pred_t = C_t (A_t + ridge I)^{-1} s_t, with A and C as running sums: O(D^3) per step instead
// of re-solving the stacked t-1 pair system from scratch.
std::vector<double> least_squares_curve(const double* states, int batch, int seq_len, int dim,
                                        double ridge, bool include_latest_pair) {
  check_shape("least_squares_curve", batch, seq_len, dim);
  if (!(ridge > 0.0) || !std::isfinite(ridge)) {
    fail("least_squares_curve: ridge must be finite and > 0, got {}", ridge);
  }
  return per_step_curve(
      states, batch, seq_len, dim,
      [seq_len, dim, ridge, include_latest_pair](const ConstSequence& seq, double* err) {
        Eigen::MatrixXd a = Eigen::MatrixXd::Zero(dim, dim);
        Eigen::MatrixXd c = Eigen::MatrixXd::Zero(dim, dim);
        Eigen::MatrixXd reg(dim, dim);
        Eigen::VectorXd x(dim);
        Eigen::VectorXd pred(dim);
        Eigen::LLT<Eigen::MatrixXd> llt(dim);
        const Eigen::MatrixXd ridge_eye = ridge * Eigen::MatrixXd::Identity(dim, dim);
        // Row k holds s_{k+1}; at step k the pairs (row i, row i+1) for i < k - lag are used.
        const int lag = include_latest_pair ? 0 : 1;
        for (int k = 0; k < seq_len; ++k) {
          const int newest = k - 1 - lag;
          if (newest >= 0) {
            const auto s_i = seq.row(newest).transpose();
            a.noalias() += s_i * s_i.transpose();
            c.noalias() += seq.row(newest + 1).transpose() * s_i.transpose();
          }
          // A + ridge I is symmetric positive definite for ridge > 0, so Cholesky applies.
          reg = a + ridge_eye;
          llt.compute(reg);
          x = llt.solve(seq.row(k).transpose());
          pred.noalias() = c * x;
          err[k] = (pred - seq.row(k + 1).transpose()).squaredNorm();
        }
      });
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
                             double ridge) {
  validate(cfg);
  if (test_batches < 1) fail("run_baselines: test_batches must be >= 1, got {}", test_batches);
  if (batch_size < 1) fail("run_baselines: batch_size must be >= 1, got {}", batch_size);
  if (!(ridge > 0.0) || !std::isfinite(ridge)) {
    fail("run_baselines: ridge must be finite and > 0, got {}", ridge);
  }
  const int t_len = cfg.seq_len;
  const int d = cfg.dim;
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
  for (int step = 0; step < test_batches; ++step) {
    const std::vector<double> states =
        sample_states(cfg, seed, RngPurpose::TestData, uint64_t(step), batch_size);
    const double* s = states.data();
    const std::vector<double> batch_curves[] = {
        zero_predictor_curve(s, batch_size, t_len, d),
        copy_predictor_curve(s, batch_size, t_len, d),
        least_squares_curve(s, batch_size, t_len, d, ridge),
        least_squares_curve(s, batch_size, t_len, d, ridge, true),
        gd1_curve(s, batch_size, t_len, d, report.gd_eta)};
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
