#pragma once
// Batches of model inputs (tokens in the run's format) and the per-time-step evaluation of a
// model on them.
#include <cstdint>
#include <vector>

#include "core/rng.hpp"
#include "core/stats.hpp"
#include "data/sequences.hpp"
#include "model/batch_runner.hpp"
#include "train/run_config.hpp"

namespace mesalab {

struct TokenBatch {
  int batch = 0, seq_len = 0;
  int dim = 0;                 // O: observed dim (the model predicts o_{t+1})
  int width = 0;               // token width
  std::vector<double> states;  // (B, T+1, O): the observations
  std::vector<float> tokens;   // (B, T, width)
  std::vector<float> labels;   // (B, T, O)
};

// The batch of sequences drawn for (seed, purpose, step), as tokens of cfg.tokens.
TokenBatch make_token_batch(const RunConfig& cfg, uint64_t seed, RngPurpose purpose, uint64_t step,
                            int batch);

// The fixed test set: batches step = 0..count-1 of RngPurpose::TestData.
std::vector<TokenBatch> make_test_set(const RunConfig& cfg, uint64_t seed, int count, int batch);

// loss_t = sum over sequences and channels of (pred_t - s_{t+1})^2 / (2B), t = 1..T,
// averaged over the batches. runner.batch() must equal each batch's size.
std::vector<double> per_step_loss(BatchRunner<float>& runner, const float* params,
                                  const std::vector<TokenBatch>& batches);

}  // namespace mesalab
