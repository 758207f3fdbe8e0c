#include <fmt/format.h>

#include <cmath>

#include "analysis/sensitivity_run.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/sensitivity_figures.hpp"

namespace mesalab::cli {

namespace {

struct SensitivityArgs {
  std::string run_dir;
  bool every_checkpoint = false;
  int batch = kSensitivityBatch;
  bool json = false;
};

nlohmann::json computed_json(const RunSensitivity& c) {
  nlohmann::json j = sensitivity_record_json(c.record);
  j["source"] = c.source;
  nlohmann::json ratios = nlohmann::json::array();
  for (size_t i = 0; i < c.record.table.targets.size(); ++i) {
    const double r = c.record.table.previous_to_old_ratio(i);
    ratios.push_back(std::isfinite(r) ? nlohmann::json(r) : nlohmann::json(nullptr));
  }
  j["previous_to_old_ratio"] = ratios;
  return j;
}

int run_sensitivity_command(const SensitivityArgs& a) {
  namespace fs = std::filesystem;
  const fs::path run_dir(a.run_dir);
  const std::vector<RunSensitivity> computed =
      mesalab::run_sensitivity(run_dir, a.every_checkpoint, a.batch);
  const fs::path recorded_path = run_dir / "sensitivity.jsonl";
  const std::vector<SensitivityRecord> recorded =
      fs::exists(recorded_path)
          ? parse_sensitivity_jsonl(read_file(recorded_path), recorded_path.string())
          : std::vector<SensitivityRecord>{};

  nlohmann::json report = {{"run", run_dir.string()},
                           {"batch", a.batch},
                           {"targets", computed.front().record.table.targets},
                           {"computed", nlohmann::json::array()},
                           {"recorded", nlohmann::json::array()}};
  for (const RunSensitivity& c : computed) report["computed"].push_back(computed_json(c));
  for (const SensitivityRecord& r : recorded)
    report["recorded"].push_back(sensitivity_record_json(r));
  write_file_atomic(run_dir / "sensitivity.json", report.dump(2) + "\n");

  std::vector<SensitivityRecord> records;
  for (const RunSensitivity& c : computed) records.push_back(c.record);
  const report::FigureFiles lag_figure = write_run_figure(
      run_dir, "sensitivity",
      report::sensitivity_lag_figure(
          fmt::format("{}: sensitivity of the first block's output at token k", a.run_dir),
          records));
  // Over training: the records of the training option if any, else the checkpoints'.
  const std::vector<SensitivityRecord>& over_training = recorded.empty() ? records : recorded;
  std::string training_line;
  if (over_training.size() >= 2)
    training_line = figure_line(write_run_figure(
        run_dir, "sensitivity_training",
        report::sensitivity_training_figure(
            fmt::format("{}: sensitivity to earlier inputs over training", a.run_dir),
            over_training)));
  if (a.json) {
    fmt::print("{}\n", report.dump());
    return 0;
  }
  const size_t last = computed.front().record.table.targets.size() - 1;
  const int k = computed.front().record.table.targets[last];
  fmt::print("{}: sensitivity of the first block's output at token k = {} to u_(k-lag) ({} seqs)\n",
             a.run_dir, k, a.batch);
  fmt::print("  {:>8}", "step");
  for (int lag = 0; lag <= std::min(k, 5); ++lag) fmt::print(" {:>9}", fmt::format("lag {}", lag));
  fmt::print(" {:>11}\n", "lag1/old");
  for (const RunSensitivity& c : computed) {
    fmt::print("  {:>8}", c.record.step);
    for (int lag = 0; lag <= std::min(k, 5); ++lag)
      fmt::print(" {:>9.3g}", c.record.table.at_lag(last, lag));
    fmt::print(" {:>11.3g}\n", c.record.table.previous_to_old_ratio(last));
  }
  if (!recorded.empty())
    fmt::print("{} records from training in {}\n", recorded.size(), recorded_path.string());
  fmt::print("{}\n", figure_line(lag_figure));
  if (!training_line.empty()) fmt::print("{}\n", training_line);
  return 0;
}

}  // namespace

Command add_sensitivity_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "sensitivity",
      "Sensitivity of the first block's output at tokens 1, (T-1)/2, T-1 to earlier inputs");
  auto args = std::make_shared<SensitivityArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_flag("--every-checkpoint", args->every_checkpoint,
                "every stored ckpt/step_<N>.safetensors and the initialisation (default: the "
                "latest checkpoint)");
  app->add_option("--batch", args->batch, "test sequences (the first of the run's test batch 0)")
      ->check(CLI::Range(1, 1 << 20));
  app->add_flag("--json", args->json, "print the result as JSON");
  return {app, [args] { return run_sensitivity_command(*args); }};
}

}  // namespace mesalab::cli
