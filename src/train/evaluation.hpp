#pragma once
// Batches of model inputs (tokens in the run's format) and the per-time-step evaluation of a
// model on them.
#include <cstdint>
#include <vector>

#include "core/rng.hpp"
#include "core/stats.hpp"
#include "data/sequences.hpp"
#include "data/token_batch.hpp"
#include "model/batch_runner.hpp"
#include "train/run_config.hpp"

namespace mesalab {

// The data, token format and token width of a run.
TokenSource token_source(const RunConfig& cfg);

// The batch of sequences drawn for (seed, purpose, step), as tokens of cfg.tokens, with its
// states (fill_token_batch).
TokenBatch make_token_batch(const RunConfig& cfg, uint64_t seed, RngPurpose purpose, uint64_t step,
                            int batch);

// The fixed test set: batches step = 0..count-1 of RngPurpose::TestData.
std::vector<TokenBatch> make_test_set(const RunConfig& cfg, uint64_t seed, int count, int batch);

// loss_t = sum over sequences and channels of (pred_t - s_{t+1})^2 / (2B), t = 1..T,
// averaged over the batches. runner.batch() must equal each batch's size.
std::vector<double> per_step_loss(BatchRunner<float>& runner, const float* params,
                                  const std::vector<TokenBatch>& batches);

}  // namespace mesalab
