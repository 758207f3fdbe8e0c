#include <fmt/format.h>

#include "analysis/baselines.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/run_figures.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluation.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct EvalArgs {
  std::string run_dir;
  std::string checkpoint;
  bool json = false;
};

int run_eval(const EvalArgs& a) {
  const RunConfig cfg = load_run_config(a.run_dir, {});
  const Transformer model(cfg.model);
  const std::filesystem::path ckpt = checkpoint_to_read(a.run_dir, a.checkpoint);
  const TrainState state = load_run_checkpoint(ckpt, cfg, model);
  BatchRunner<float> runner(model, cfg.train.test_batch_size, cfg.data.seq_len,
                            /*forward_only=*/true);
  const auto test_set =
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size);
  const std::vector<double> curve = per_step_loss(runner, state.params.data(), test_set);
  // The baselines run on exactly the same test sequences (same seed, purpose and steps).
  const BaselineReport baselines =
      run_baselines(cfg.data, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size,
                    1e-3, cfg.delay_baseline_width());

  std::vector<std::pair<std::string, std::vector<double>>> columns = {{"model", curve}};
  for (const auto& c : baselines.curves) columns.push_back(c);
  std::string csv = "t";
  for (const auto& [name, _] : columns) csv += "," + name;
  csv += "\n";
  for (size_t t = 0; t < curve.size(); ++t) {
    csv += std::to_string(t + 1);
    for (const auto& [_, values] : columns) csv += fmt::format(",{:.8g}", values[t]);
    csv += "\n";
  }
  nlohmann::json report = baseline_report_json(baselines);
  report["checkpoint"] = ckpt.string();
  report["step"] = state.step;
  report["model"] = {{"mean", curve_mean(curve)}, {"per_t", curve}};
  write_file_atomic(std::filesystem::path(a.run_dir) / "eval.csv", csv);
  write_file_atomic(std::filesystem::path(a.run_dir) / "eval.json", report.dump(2) + "\n");
  const report::FigureFiles figure = write_run_figure(
      a.run_dir, "eval",
      report::per_step_figure(fmt::format("{} (step {}) and the baselines", a.run_dir, state.step),
                              columns));
  if (a.json) {
    fmt::print("{}\n", report.dump());
    return 0;
  }
  fmt::print("{} (step {}): mean per-step test loss over t = 1..{}\n", ckpt.string(), state.step,
             curve.size());
  for (const auto& [name, values] : columns)
    fmt::print("  {:<24} {:.5f}\n", name, curve_mean(values));
  fmt::print("  (GD-1 eta tuned on held-out sequences: {:.5f})\nper-t curves: {}/eval.csv\n{}\n",
             baselines.gd_eta, a.run_dir, figure_line(figure));
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& root) {
  auto* app =
      root.add_subcommand("eval", "Per-time-step test loss of a run, next to the baselines");
  auto args = std::make_shared<EvalArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the latest)");
  app->add_flag("--json", args->json, "print the result as JSON");
  return {app, [args] { return run_eval(*args); }};
}

}  // namespace mesalab::cli
