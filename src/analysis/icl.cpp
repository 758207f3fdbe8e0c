#include "analysis/icl.hpp"

#include <Eigen/Cholesky>

#include "analysis/baselines.hpp"
#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "model/batch_runner.hpp"

namespace mesalab {

void check_icl_model(const ModelConfig& model, const IclConfig& cfg) {
  if (!model.embedding())
    fail(
        "in-context learning needs a raw-token model (data.tokens = raw, an input embedding); "
        "this model reads {}-wide constructed tokens",
        model.token_dim());
  if (model.input_dim != cfg.dim || model.data_dim != cfg.dim)
    fail("in-context tasks of dim {} do not fit a model that reads {}-wide tokens and predicts {}",
         cfg.dim, model.input_dim, model.data_dim);
}

// W_j = C_j (A_j + ridge I)^{-1} with A_j = sum_{i<j} x_i x_i^T, C_j = sum_{i<j} y_i x_i^T.
static std::vector<double> lsq_examples_curve(const IclTasks& tasks, int examples, double ridge) {
  const int D = tasks.dim;
  std::vector<double> curve(size_t(examples), 0.0);
  for (int b = 0; b < tasks.batch; ++b) {
    const auto X = mat(tasks.x.data() + size_t(b) * tasks.pairs * D, tasks.pairs, D);
    const auto Y = mat(tasks.y.data() + size_t(b) * tasks.pairs * D, tasks.pairs, D);
    Eigen::MatrixXd A = ridge * Eigen::MatrixXd::Identity(D, D), C = Eigen::MatrixXd::Zero(D, D);
    for (int j = 0; j < examples; ++j) {
      const Eigen::VectorXd x = X.row(j).transpose(), y = Y.row(j).transpose();
      const Eigen::VectorXd pred = C * A.ldlt().solve(x);
      curve[size_t(j)] += (pred - y).squaredNorm() / (2.0 * tasks.batch);
      A += x * x.transpose();
      C += y * x.transpose();
    }
  }
  return curve;
}

IclCurves icl_curves(const Transformer& model, const std::vector<float>& params,
                     const IclConfig& cfg, const std::vector<double>& eos,
                     const std::vector<double>& prefix, uint64_t seed, int batch) {
  check_icl_model(model.config(), cfg);
  const IclLayout lay = icl_layout(cfg);
  const IclTasks tasks = draw_icl_tasks(cfg, seed, RngPurpose::Icl, 0, batch);
  const IclBatch data = format_icl_batch(cfg, tasks, eos, prefix);
  std::vector<float> tokens, labels;
  icl_tokens(data, tokens, labels);
  BatchRunner<float> runner(model, batch, lay.length, /*forward_only=*/true);
  std::vector<double> sq_err(size_t(batch) * lay.length);
  runner.token_errors(params.data(), tokens.data(), labels.data(), sq_err.data());
  const std::vector<double> sequence_lsq =
      least_squares_curve(data.sequences.data(), batch, lay.length, cfg.dim);
  IclCurves curves;
  for (int x : lay.x_positions) {
    double sum = 0.0;
    for (int b = 0; b < batch; ++b) sum += sq_err[size_t(b) * lay.length + x];
    curves.model.push_back(sum / (2.0 * batch));
    curves.lsq_sequence.push_back(sequence_lsq[size_t(x)]);
  }
  curves.lsq_examples = lsq_examples_curve(tasks, int(lay.x_positions.size()), 1e-3);
  return curves;
}

}  // namespace mesalab
