#pragma once
// Everything a training run needs, resolved from the schema (defaults = the paper's
// 2-layer LSA on constructed tokens) plus an optional file and --set overrides.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/sequences.hpp"
#include "data/tokens.hpp"
#include "io/config.hpp"
#include "model/transformer.hpp"
#include "train/optimizer.hpp"

namespace mesalab {

struct TrainSettings {
  int batch_size = 256;
  int64_t steps = 20000;
  uint64_t seed = 42;
  int64_t eval_every = 100;
  int test_batches = 10;
  int test_batch_size = 256;
  int64_t checkpoint_every = 1000;
  int threads = 0;                       // 0: all cores (results do not depend on it)
  bool mesa_recompute_inverses = false;  // memory for time; results do not depend on it
  // Record the first block's sensitivity table (analysis/sensitivity.hpp) every this many
  // steps into RUN/sensitivity.jsonl; 0 = off. Reads the parameters only: no training bit
  // changes.
  int64_t sensitivity_every = 0;
  std::string runs_dir = "runs";
  int64_t inject_nan_at_step = -1;  // testing hook: poison the gradient at this step
};

struct RunConfig {
  std::string name;
  ModelConfig model;
  DataConfig data;
  TokenFormat tokens = TokenFormat::Constructed;
  OptimConfig optim;
  TrainSettings train;
  nlohmann::json resolved;  // the full nested config, defaults filled in

  // Width of the delay vectors of the least_squares_delay baseline: the delay tokens' own
  // width when the run uses them, else the official 80.
  int delay_baseline_width() const;
};

const ConfigSchema& run_config_schema();

// Resolves and validates; errors name the key. `file` may be null (defaults only).
RunConfig make_run_config(const nlohmann::json& file, const std::vector<std::string>& overrides);

}  // namespace mesalab
