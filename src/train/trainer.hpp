#pragma once
// The training loop. A run directory holds config.json (resolved), metrics.jsonl (one
// line per evaluation), ckpt/{step_<N>,latest}.safetensors and, with
// train.sensitivity_every, sensitivity.jsonl (one line per record, truncated on resume as
// metrics.jsonl is). Batches depend only on
// (seed, step), and the optimizer state and loss accumulator are checkpointed, so a resumed
// run reproduces the uninterrupted one bit for bit.
// Protocol (as the paper's code): the test loss logged at step s is measured before the
// update of step s; the train loss logged there is the mean over the steps since the
// previous evaluation.
#include <filesystem>
#include <functional>
#include <utility>
#include <vector>

#include "train/checkpoint.hpp"
#include "train/run_config.hpp"

namespace mesalab {

struct TrainOptions {
  bool resume = false;  // continue from run_dir/ckpt/latest.safetensors
  bool force = false;   // start afresh even if run_dir exists (its old files are replaced)
  // Resume if run_dir holds a checkpoint of the same run (same resolved config up to the
  // keys resume may change), else start afresh: one idempotent command per run, which is
  // what `mesalab reproduce` and its Slurm array tasks run. A different config is an error.
  bool continue_existing = false;
  bool progress = true;         // progress line on stderr
  bool detect_anomaly = false;  // check every layer's outputs and gradients for NaN/inf
  // Resume even if the checkpoint was written under another config (e.g. a lowered lr after
  // a deterministic failure): the differing keys go to stderr and RUN/config_changes.log.
  // Without it such a resume is an error naming the keys.
  bool allow_config_change = false;
  // Called after every evaluation with the step, the parameters the test loss was measured
  // on (before that step's update) and the test loss; an exception it throws stops training.
  std::function<void(int64_t step, const std::vector<float>& params, double test_loss)>
      on_evaluation;
  // Polled after every step's update. When it returns true, train writes the checkpoint of
  // that step (latest.safetensors, as at checkpoint_every) and returns at once with
  // TrainResult::stopped set: an interrupted run (Ctrl-C in the Python module) resumes from
  // exactly where it stopped, bit-identically.
  std::function<bool()> stop_requested;
};

struct TrainResult {
  std::filesystem::path run_dir;
  int64_t steps = 0;
  std::vector<double> test_curve;  // per-time-step test loss after the last step
  double test_loss = 0.0;          // mean of test_curve
  bool stopped = false;            // stop_requested ended the run early (test_curve empty)
};

TrainResult train(const RunConfig& cfg, const std::filesystem::path& run_dir,
                  const TrainOptions& options);

// Paths inside a run directory.
std::filesystem::path latest_checkpoint_path(const std::filesystem::path& run_dir);
std::filesystem::path run_config_path(const std::filesystem::path& run_dir);

// The step checkpoints a run keeps (ckpt/step_<N>.safetensors: every train.checkpoint_every
// steps and the last step), sorted by N; other files in ckpt/ are ignored.
std::vector<std::pair<int64_t, std::filesystem::path>> step_checkpoints(
    const std::filesystem::path& run_dir);

// The checkpoint a command on a finished run reads: `chosen` if not empty, else the run's
// latest; fails (bad input) naming the path if it does not exist.
std::filesystem::path checkpoint_to_read(const std::filesystem::path& run_dir,
                                         const std::string& chosen);

// The keys whose values differ between two resolved configs, ignoring those a resume may
// change (train.steps, train.threads, train.runs_dir, train.mesa_recompute_inverses,
// train.sensitivity_every), as
// "key: a -> b" lines.
std::vector<std::string> run_config_differences(const nlohmann::json& stored,
                                                const nlohmann::json& requested);

// The keys (as run_config_differences) in which the config stored in checkpoint `ckpt`
// differs from cfg; empty if the checkpoint belongs to cfg's run. The stored config is
// re-resolved first, so keys added to mesalab since it was written take their defaults.
std::vector<std::string> checkpoint_config_differences(const std::filesystem::path& ckpt,
                                                       const RunConfig& cfg);

// load_checkpoint, after checking that the checkpoint belongs to cfg's run: a run directory
// whose config.json was edited, or a checkpoint of another run, is an Error naming the
// checkpoint and the differing keys.
TrainState load_run_checkpoint(const std::filesystem::path& ckpt, const RunConfig& cfg,
                               const Transformer& model);

// Reads run_dir/config.json and re-validates it (with --set overrides on top).
RunConfig load_run_config(const std::filesystem::path& run_dir,
                          const std::vector<std::string>& overrides);

}  // namespace mesalab
