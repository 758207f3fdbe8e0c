// mesalab plot RUN_DIR: the training curves of a run (train and test loss, learning rate
// against the step) from its metrics.jsonl, as RUN_DIR/figures/training.{csv,gp,svg,png}.
// It reads only metrics.jsonl, so it also works on a run that is still training.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "report/run_figures.hpp"

namespace mesalab::cli {

namespace {

struct PlotArgs {
  std::string run_dir;
  bool json = false;
};

int run_plot(const PlotArgs& a) {
  const std::filesystem::path run(a.run_dir);
  if (!std::filesystem::is_directory(run)) fail("no run directory at {}", a.run_dir);
  const auto metrics = report::read_metrics(run / "metrics.jsonl");
  const report::FigureFiles files =
      write_run_figure(run, "training", report::training_figure(metrics, "training: " + a.run_dir));
  if (a.json) {
    const auto render = [&](const std::filesystem::path& p) {
      return files.rendered ? nlohmann::json(p.string()) : nlohmann::json();
    };
    const nlohmann::json j = {{"csv", files.csv.string()},  {"script", files.script.string()},
                              {"svg", render(files.svg)},   {"png", render(files.png)},
                              {"rendered", files.rendered}, {"warning", files.warning}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  if (files.rendered) fmt::print("{}\n{}\n", files.svg.string(), files.png.string());
  fmt::print("{}\n{}\n", files.csv.string(), files.script.string());
  return 0;
}

}  // namespace

Command add_plot_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "plot", "Training curves of a run (loss and learning rate vs step) into RUN_DIR/figures/");
  auto args = std::make_shared<PlotArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_flag("--json", args->json, "print the written paths as JSON");
  return {app, [args] { return run_plot(*args); }};
}

}  // namespace mesalab::cli
