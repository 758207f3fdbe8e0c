#pragma once
// In-context linear regression with a model trained autoregressively on sequences
// (SPEC_EXPERIMENTS 8): the model runs unchanged on formatted examples (data/icl.hpp) and is
// scored where it predicts y_j, next to least-squares solvers on the same examples.
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/icl.hpp"
#include "model/transformer.hpp"
#include "train/run_config.hpp"

namespace mesalab {

// Per example j = 1..n (shots j - 1), loss_j = sum_b sum_d (pred_j - y_j)_{b,d}^2 / (2B).
struct IclCurves {
  std::vector<double> model;
  // Least squares on the formatted sequence as if it were a linear sequence (each token
  // regressed on the one before, the official baseline; latest pair left out, ridge 1e-3).
  std::vector<double> lsq_sequence;
  // Least squares of y on x over the previous examples: W_j = argmin sum_{i<j} |y_i - W x_i|^2
  // + 1e-3 |W|^2, pred_j = W_j x_j (0 without examples). The best a regression can do: with
  // a task switch it starts afresh at the switch (it is told where it is).
  std::vector<double> lsq_examples;
};

// Fails (bad input) unless the model reads and predicts raw D-wide tokens (an embedding with
// input_dim = data_dim = cfg.dim): constructed-token models cannot take the examples.
void check_icl_model(const ModelConfig& model, const IclConfig& cfg);

// One test batch of `batch` tasks drawn with (seed, RngPurpose::Icl, step 0), formatted with
// eos (D) and prefix (P, D) as cfg.format needs.
IclCurves icl_curves(const Transformer& model, const std::vector<float>& params,
                     const IclConfig& cfg, const std::vector<double>& eos,
                     const std::vector<double>& prefix, uint64_t seed, int batch);

// A run's ICL tasks: dim = the model's data_dim, x ~ U[-data.init_range, data.init_range]
// (the range of the states it was trained on), seq_len = data.seq_len unless given (> 0).
IclConfig icl_config_of_run(const RunConfig& run, int seq_len, double noise);

// Where prompt-tune keeps a run's tuned prompt: RUN/prompt.safetensors.
inline constexpr const char* kPromptFile = "prompt.safetensors";

// The tuned prompt of a run: an EOS token (D) and prefix tokens (P, D); empty when not tuned.
struct PromptTokens {
  std::vector<double> eos, prefix;
  int prefix_len(int dim) const { return int(prefix.size()) / dim; }
};

// The in-context curves of a run over test seeds: the model on the plain format ("base"),
// with the EOS format (+eos, if prompt.eos is set) and with prefix and EOS (+prefix+eos, if
// prompt.prefix is set too), and the two least-squares baselines on the plain format. Each
// variant has one curve per seed (batch tasks each); formats differ in their example count.
// Variants come in the order of IclVariantIndex.
enum IclVariantIndex : size_t {
  kIclBase,
  kIclLsqExamples,
  kIclLsqSequence,
  kIclEos,
  kIclPrefixEos
};
struct IclVariant {
  std::string name;
  std::vector<std::vector<double>> per_seed;
};
std::vector<IclVariant> icl_variants(const Transformer& model, const std::vector<float>& params,
                                     IclConfig cfg, const PromptTokens& prompt,
                                     const std::vector<uint64_t>& seeds, int batch);

// {"variants": [{"name", "mean_loss": [per seed], "curve": mean over seeds}, ...]}.
nlohmann::json icl_variants_json(const std::vector<IclVariant>& variants);

// Prompt tokens as safetensors: "eos" (D) and, if tuned, "prefix" (P, D), float64; metadata
// "format" = "mesalab-prompt". load_prompt checks the widths against dim.
void save_prompt(const std::filesystem::path& path, const PromptTokens& prompt, int dim,
                 const std::map<std::string, std::string>& metadata);
PromptTokens load_prompt(const std::filesystem::path& path, int dim);

}  // namespace mesalab
