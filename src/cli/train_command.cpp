#include <fmt/format.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct TrainArgs {
  ConfigOptions config;
  std::string resume;
  bool force = false;
  bool continue_existing = false;
  bool quiet = false;
  bool json = false;
  bool detect_anomaly = false;
  bool allow_config_change = false;
};

// When resuming, only the length of the run and the thread count may change.
void check_resume_overrides(const std::vector<std::string>& sets) {
  for (const auto& s : sets) {
    const std::string key = s.substr(0, s.find('='));
    if (key != "train.steps" && key != "train.threads")
      fail("cannot change '{}' when resuming a run (only train.steps and train.threads)", key);
  }
}

int run_train(const TrainArgs& a) {
  std::filesystem::path run_dir;
  RunConfig cfg;
  TrainOptions options;
  options.progress = !a.quiet;
  options.detect_anomaly = a.detect_anomaly;
  options.allow_config_change = a.allow_config_change;
  if (!a.resume.empty()) {
    if (!a.config.file.empty())
      fail("--config cannot be combined with --resume (the run has its config)");
    if (!a.allow_config_change) check_resume_overrides(a.config.sets);
    run_dir = a.resume;
    cfg = load_run_config(run_dir, a.config.sets);
    options.resume = true;
  } else {
    cfg = a.config.resolve();
    run_dir = std::filesystem::path(cfg.train.runs_dir) / cfg.name;
    options.force = a.force;
    options.continue_existing = a.continue_existing;
  }
  const TrainResult r = train(cfg, run_dir, options);
  if (a.json) {
    fmt::print("{}\n", nlohmann::json{{"run_dir", r.run_dir.string()},
                                      {"steps", r.steps},
                                      {"test_loss", r.test_loss},
                                      {"test_curve", r.test_curve}}
                           .dump());
  } else {
    fmt::print("run {}: {} steps, mean per-step test loss {:.5f}\n", r.run_dir.string(), r.steps,
               r.test_loss);
  }
  return 0;
}

}  // namespace

Command add_train_command(CLI::App& root) {
  auto* app = root.add_subcommand("train", "Train a model (defaults: the paper's 2-layer LSA)");
  auto args = std::make_shared<TrainArgs>();
  args->config.add_to(*app);
  app->add_option("--resume", args->resume, "continue the run in this directory bit-identically");
  app->add_flag("--force", args->force, "start afresh even if the run directory exists");
  app->add_flag("--continue", args->continue_existing,
                "resume the run if its directory holds a checkpoint of the same config, else "
                "start it (one idempotent command per run)")
      ->excludes("--resume")
      ->excludes("--force");
  app->add_flag("--allow-config-change", args->allow_config_change,
                "with --resume: continue even if config.json (or --set) differs from the config "
                "the checkpoint was written under; the changes are logged to config_changes.log")
      ->needs("--resume");
  app->add_flag("--quiet", args->quiet, "no progress line");
  app->add_flag("--json", args->json, "print the result as JSON");
  app->add_flag("--detect-anomaly", args->detect_anomaly,
                "check every layer's outputs and gradients for NaN/inf (slower)");
  return {app, [args] { return run_train(*args); }};
}

}  // namespace mesalab::cli
