#include "analysis/icl.hpp"

#include <Eigen/Cholesky>

#include "analysis/baselines.hpp"
#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "io/safetensors.hpp"
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

IclConfig icl_config_of_run(const RunConfig& run, int seq_len, double noise) {
  IclConfig cfg;
  cfg.dim = run.model.data_dim;
  cfg.seq_len = seq_len > 0 ? seq_len : run.data.seq_len;
  cfg.range = run.data.init_range;
  cfg.noise = noise;
  check_icl_model(run.model, cfg);
  cfg.validate();
  return cfg;
}

// W_j = C_j (A_j + ridge I)^{-1} with A_j = sum_{i<j} x_i x_i^T, C_j = sum_{i<j} y_i x_i^T.
// A task switch before example k (switch_pair = k > 0) restarts the sums.
static std::vector<double> lsq_examples_curve(const IclTasks& tasks, int examples, int switch_pair,
                                              double ridge) {
  const int D = tasks.dim;
  std::vector<double> curve(size_t(examples), 0.0);
  for (int b = 0; b < tasks.batch; ++b) {
    const auto X = mat(tasks.x.data() + size_t(b) * tasks.pairs * D, tasks.pairs, D);
    const auto Y = mat(tasks.y.data() + size_t(b) * tasks.pairs * D, tasks.pairs, D);
    Eigen::MatrixXd A = ridge * Eigen::MatrixXd::Identity(D, D), C = Eigen::MatrixXd::Zero(D, D);
    for (int j = 0; j < examples; ++j) {
      if (j > 0 && j == switch_pair) {
        A = ridge * Eigen::MatrixXd::Identity(D, D);
        C.setZero();
      }
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
  curves.lsq_examples =
      lsq_examples_curve(tasks, int(lay.x_positions.size()), cfg.switch_pair, 1e-3);
  return curves;
}

std::vector<IclVariant> icl_variants(const Transformer& model, const std::vector<float>& params,
                                     IclConfig cfg, const PromptTokens& prompt,
                                     const std::vector<uint64_t>& seeds, int batch) {
  std::vector<IclVariant> v = {
      {"base", {}}, {"least squares (examples)", {}}, {"least squares (sequence)", {}}};
  const bool eos = !prompt.eos.empty(), prefix = eos && !prompt.prefix.empty();
  if (eos) v.push_back({"+eos", {}});
  if (prefix) v.push_back({"+prefix+eos", {}});
  for (uint64_t seed : seeds) {
    cfg.format = IclFormat::Plain;
    IclCurves plain = icl_curves(model, params, cfg, {}, {}, seed, batch);
    v[0].per_seed.push_back(std::move(plain.model));
    v[1].per_seed.push_back(std::move(plain.lsq_examples));
    v[2].per_seed.push_back(std::move(plain.lsq_sequence));
    if (eos) {
      cfg.format = IclFormat::Eos;
      v[3].per_seed.push_back(icl_curves(model, params, cfg, prompt.eos, {}, seed, batch).model);
    }
    if (prefix) {
      cfg.format = IclFormat::Prefix;
      cfg.prefix_len = prompt.prefix_len(cfg.dim);
      v[4].per_seed.push_back(
          icl_curves(model, params, cfg, prompt.eos, prompt.prefix, seed, batch).model);
    }
  }
  return v;
}

nlohmann::json icl_variants_json(const std::vector<IclVariant>& variants) {
  nlohmann::json out = nlohmann::json::array();
  for (const IclVariant& v : variants) {
    std::vector<double> means, mean(v.per_seed.empty() ? 0 : v.per_seed[0].size(), 0.0);
    for (const auto& curve : v.per_seed) {
      means.push_back(curve_mean(curve));
      for (size_t j = 0; j < curve.size(); ++j) mean[j] += curve[j] / double(v.per_seed.size());
    }
    out.push_back({{"name", v.name}, {"mean_loss", means}, {"curve", mean}});
  }
  return {{"variants", out}};
}

void save_prompt(const std::filesystem::path& path, const PromptTokens& prompt, int dim,
                 const std::map<std::string, std::string>& metadata) {
  if (prompt.eos.size() != size_t(dim) || prompt.prefix.size() % size_t(dim) != 0)
    fail("prompt: an EOS token of {} values and a prefix of whole {}-wide tokens needed", dim, dim);
  SafetensorsFile file;
  file.metadata = metadata;
  file.metadata["format"] = "mesalab-prompt";
  file.add_f64("eos", {dim}, prompt.eos.data());
  if (!prompt.prefix.empty())
    file.add_f64("prefix", {prompt.prefix_len(dim), dim}, prompt.prefix.data());
  save_safetensors(path, file);
}

PromptTokens load_prompt(const std::filesystem::path& path, int dim) {
  const SafetensorsFile file = load_safetensors(path);
  const auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != "mesalab-prompt")
    fail("{}: not a mesalab prompt file (metadata 'format' is not 'mesalab-prompt')",
         path.string());
  PromptTokens prompt;
  prompt.eos = file.get_f64("eos", {dim});
  if (const Tensor* prefix = file.find("prefix")) {
    if (prefix->shape.size() != 2 || prefix->shape[1] != dim)
      fail("{}: the prefix tokens are not {} wide", path.string(), dim);
    prompt.prefix = file.get_f64("prefix", prefix->shape);
  }
  return prompt;
}

}  // namespace mesalab
