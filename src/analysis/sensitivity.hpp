#pragma once
// Sensitivity of the first block's output to earlier inputs (SPEC_EXPERIMENTS 7, the official
// Training.fast_sensitivity): for target tokens k in {1, (T-1)//2, T-1} and positions j <= k,
//   S_k(j) = 1/E sum_l 1/B sum_b || d x_1[b, k, l] / d u[b, j, :] ||_2,
// x_1 the residual stream after the first block (after its clip), u the model's input tokens
// (B, T, token_dim): for raw-token models the raw observations before the input embedding,
// as the official code differentiates model.apply with respect to batch[0]. If the first
// (softmax) block copies u_{k-1}, u_{k-2}, ... into token k, S_k is large at the few
// positions just before k and small further back.
//
// Exact and cheap: per chunk of 8 sequences, one forward and E backwards (one per output
// channel l, all sequences of the chunk at once, since sequences do not interact) of the first
// block alone, on the sequences cut to positions 0..k (the block is causal). The kernel needs only
// model/ (the trainer records it); the run-level parts (which batch, the lines of
// RUN/sensitivity.jsonl) follow.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/transformer.hpp"

namespace mesalab {

struct RunConfig;
struct TokenBatch;

// Sequences per record, as the official code (64 test sequences).
inline constexpr int kSensitivityBatch = 64;

// The official target tokens {1, (T-1)//2, T-1} (0-based); Error for T < 2.
std::vector<int> sensitivity_targets(int seq_len);

struct SensitivityTable {
  int batch = 0;                            // sequences averaged over
  std::vector<int> targets;                 // k
  std::vector<std::vector<double>> values;  // [target i][position j = 0..targets[i]]

  // S_k(k - lag) of target i; NaN if lag > k.
  double at_lag(size_t i, int lag) const;
  // S_k(k - 1) / mean_{j <= k - 5} S_k(j): how much more the previous input matters than
  // the old ones; NaN if k < 5.
  double previous_to_old_ratio(size_t i) const;
};

// Computes the table for a model, reusing its buffers (a one-block model, per-thread
// workspaces for each target) from call to call. Deterministic for any thread count: each
// output channel's backward runs on one thread, and channels are summed in order.
template <class S>
class FirstBlockSensitivity {
 public:
  FirstBlockSensitivity(const Transformer& model, int batch, int seq_len);

  // tokens (batch, seq_len, token_dim) -> the table over those sequences.
  SensitivityTable compute(const S* params, const S* tokens);

 private:
  struct ThreadBuffers {
    std::vector<Workspace<S>> workspaces;  // one per target: a chunk, T' = k + 1
    std::vector<S> grads, d_stream, grad_tokens;
    int forwarded = -1;  // target * chunks + chunk of the forward held, -1: none this call
  };
  const Transformer& model_;
  Transformer block_;
  int batch_, seq_len_;
  std::vector<int> targets_;
  std::vector<std::vector<S>> cut_tokens_;  // per target: (B, k + 1, token_dim)
  std::vector<ThreadBuffers> threads_;
};

// One-off form of FirstBlockSensitivity::compute.
template <class S>
SensitivityTable first_block_sensitivity(const Transformer& model, const S* params, const S* tokens,
                                         int batch, int seq_len);

// The fixed sequences the analysis reads, in training and afterwards: the first `batch`
// sequences of the run's test batch 0 (train.seed, RngPurpose::TestData, step 0), the same
// at every record, as the official batch drawn once from the run's test key.
TokenBatch sensitivity_batch(const RunConfig& cfg, int batch);

// One record of RUN/sensitivity.jsonl or sensitivity.json: the table at a training step.
struct SensitivityRecord {
  int64_t step = 0;
  SensitivityTable table;
};

// {"step", "batch", "targets": [k...], "sensitivity": [[S_k(0..k)]...]}.
nlohmann::json sensitivity_record_json(const SensitivityRecord& record);
// The inverse; `source` names the record in errors (Error, bad input).
SensitivityRecord parse_sensitivity_record(const nlohmann::json& j, const std::string& source);
// The records of a sensitivity.jsonl text, one per non-blank line; errors name the line.
std::vector<SensitivityRecord> parse_sensitivity_jsonl(const std::string& text,
                                                       const std::string& source);

}  // namespace mesalab
