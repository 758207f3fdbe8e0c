// mesalab interpolate RUN_DIR: replays the run's training from its seed and, at every
// evaluation, scores the interpolation of the current weights with the RevAlg-d of the run's
// final weights (analysis/interpolation.hpp). Writes RUN_DIR/interpolation.json and
// RUN_DIR/figures/interpolation.*; the replayed transformer's test loss is checked against the
// run's metrics.jsonl (the same trajectory, bit for bit).
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "report/run_figures.hpp"
#include "report/run_interpolation.hpp"

namespace mesalab::cli {

namespace {

struct InterpolateArgs {
  std::string run_dir;
  double alpha = 0.5;
  std::vector<std::string> sets;
  bool json = false;
  bool quiet = false;
};

int run_interpolate(const InterpolateArgs& a) {
  const std::filesystem::path dir(a.run_dir);
  const InterpolationResult r =
      report::interpolate_run_dir(dir, {a.alpha, a.sets, !a.quiet, false});
  const report::FigureFiles figure = write_run_figure(
      dir, "interpolation",
      report::interpolation_figure(
          r, fmt::format("{}: transformer, RevAlg-d and their interpolation", a.run_dir)));
  if (a.json) {
    fmt::print("{}\n", interpolation_json(r).dump());
    return 0;
  }
  const InterpolationPoint& last = r.points.back();
  fmt::print(
      "step {}: transformer {:.5f}, interpolated (alpha = {:g}) {:.5f}, RevAlg-d {:.5f}\n"
      "replay: {} evaluations, largest difference to metrics.jsonl {:.3g}\n{}\n",
      last.step, last.model, r.alpha, last.interpolated, r.revalg_d, r.points.size(),
      r.replay_max_difference, figure_line(figure));
  return 0;
}

}  // namespace

Command add_interpolate_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "interpolate",
      "Replay a linear-attention run's training and score, at every evaluation, the 50/50 "
      "interpolation of its weights with the RevAlg-d of its final weights");
  auto args = std::make_shared<InterpolateArgs>();
  app->add_option("run_dir", args->run_dir, "a finished run directory (runs/<name>)")->required();
  app->add_option("--alpha", args->alpha, "weight of RevAlg-d in [0, 1]")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--set", args->sets, "override a key of the run's config, e.g. train.threads=2");
  app->add_flag("--json", args->json, "print the result as JSON");
  app->add_flag("--quiet", args->quiet, "no progress line");
  return {app, [args] { return run_interpolate(*args); }};
}

}  // namespace mesalab::cli
