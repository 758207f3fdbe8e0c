#pragma once
// Prompt tuning (SPEC_EXPERIMENTS 9): the model stays frozen; only the EOS token, or the P
// prefix tokens (with a fixed EOS), are trained by Adam (constant lr, no clipping, no weight
// decay) on fresh in-context tasks every step (RngPurpose::Prompt, step k). Loss per step:
//   L = sum_b sum_{x positions} |pred - y|^2 / (2 B n),  n = number of x positions,
// the official normaliser up to its T_data / 3 ~ n (Adam is invariant to the scale).
// d L / d token comes from the model's backward; a token used at several positions (EOS)
// sums their gradients.
#include <cstdint>
#include <functional>
#include <vector>

#include "data/icl.hpp"
#include "model/transformer.hpp"

namespace mesalab {

enum class PromptPart { Eos, Prefix };

// The official tuning runs (run_icl.ipynb at c8c1e37): 5000 Adam steps, EOS at lr 1e-3 on 64
// tasks per step, then a (20, D) prefix at lr 9e-4 on 128 tasks per step, for a model trained
// on T = 224.
inline constexpr int kOfficialTuneSteps = 5000;
inline constexpr int kOfficialPrefixLen = 20;
inline constexpr int kOfficialTuneSeqLen = 224;
// Official learning rate and batch of tuning `what`.
double official_tune_lr(PromptPart what);
int official_tune_batch(PromptPart what);

struct PromptTuneOptions {
  PromptPart what = PromptPart::Eos;
  int steps = kOfficialTuneSteps;
  double lr = 1e-3;  // official: 1e-3 for EOS, 9e-4 for the prefix
  int batch = 64;    // official: 64 for EOS, 128 for the prefix
  uint64_t seed = 0;
  std::function<void(int step, double loss)> on_step;  // after each step (progress)
};

struct PromptTuneResult {
  std::vector<double> eos;     // (D)
  std::vector<double> prefix;  // (P, D)
  std::vector<double> losses;  // L before each step's update
};

// The official starting point of tuned tokens: `count` tokens of dim values ~ N(0, 1), drawn
// from Rng{seed, Prompt, 2^64 - 1, what} (a stream the tuning tasks never use).
std::vector<double> initial_prompt_tokens(PromptPart what, int count, int dim, uint64_t seed);

// cfg.format must be Eos for what = Eos and Prefix for what = Prefix; eos and prefix are the
// starting values (prefix empty for Eos). params stay untouched (const).
PromptTuneResult tune_prompt(const Transformer& model, const std::vector<float>& params,
                             const IclConfig& cfg, std::vector<double> eos,
                             std::vector<double> prefix, const PromptTuneOptions& options);

// L and dL/d(tuned tokens) of one formatted batch: what the tuner's step uses (float); the
// double path is for the finite-difference tests.
struct PromptLoss {
  double loss = 0.0;
  std::vector<double> grad;  // d L / d eos (D) or d L / d prefix (P, D)
};
template <class S>
PromptLoss prompt_loss(const Transformer& model, const std::vector<S>& params, const IclConfig& cfg,
                       const IclTasks& tasks, const std::vector<double>& eos,
                       const std::vector<double>& prefix, PromptPart what);

}  // namespace mesalab
