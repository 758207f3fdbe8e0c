#include <fmt/format.h>

#include <cmath>

#include "analysis/linearization.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/run_figures.hpp"
#include "train/progress.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct LinearizeArgs {
  std::string run_dir, checkpoint;
  int64_t steps = kOfficialLinearizationSteps;
  double lr = 1e-3;
  int batch = 64;
  std::vector<int> layers;
  int64_t seed = -1;  // < 0: the run's train.seed
  bool quiet = false, json = false;
};

int run_linearize(const LinearizeArgs& a) {
  const RunConfig cfg = load_run_config(a.run_dir, {});
  const Transformer model(cfg.model);
  const std::filesystem::path ckpt = checkpoint_to_read(a.run_dir, a.checkpoint);
  const TrainState state = load_run_checkpoint(ckpt, cfg, model);
  LinearizeOptions options;
  options.layers = layers_to_linearize(cfg.model, a.layers);
  options.steps = a.steps;
  options.lr = a.lr;
  options.batch = a.batch;
  options.seed = a.seed < 0 ? cfg.train.seed : uint64_t(a.seed);
  ProgressLine progress(fmt::format("linearize {} layer(s)", options.layers.size()), 0, a.steps,
                        !a.quiet && !a.json);
  options.on_step = [&](int64_t step, double loss) { progress.tick(step, loss, NAN); };
  const LinearizationResult result = linearize(model, state.params, cfg, options);
  progress.finish();

  nlohmann::json report = linearization_json(result, options);
  report["checkpoint"] = ckpt.string();
  report["step"] = state.step;
  write_file_atomic(std::filesystem::path(a.run_dir) / "linearization.json", report.dump(2) + "\n");
  const report::FigureFiles figure = write_run_figure(
      a.run_dir, "linearization",
      report::linearization_figure(
          fmt::format("{} (step {}): softmax layers replaced by a fitted linear student", a.run_dir,
                      state.step),
          result));
  if (a.json) {
    fmt::print("{}\n", report.dump());
    return 0;
  }
  fmt::print(
      "{} (step {}): linear students fitted for {} steps of {} sequences (lr {:g}), spliced in "
      "one layer at a time\n  original test loss {:.5f} (run's test set)\n",
      ckpt.string(), state.step, a.steps, a.batch, a.lr, result.original_test_loss);
  fmt::print("  {:<6} {:<8} {:>16} {:>18} {:>8}\n", "layer", "kind", "fit / zero loss",
             "spliced test loss", "ratio");
  for (const LayerLinearization& l : result.layers)
    fmt::print("  {:<6} {:<8} {:>16.4g} {:>18.5f} {:>8.4f}\n", l.layer, mixer_name(l.kind),
               l.relative_fit_loss(), l.test_loss, l.ratio);
  fmt::print("  median ratio {:.4f}\n{}\n", median_ratio(result), figure_line(figure));
  return 0;
}

}  // namespace

Command add_linearize_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "linearize",
      "Fit a linear-attention student to each softmax layer, splice it in, report the loss ratio");
  auto args = std::make_shared<LinearizeArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the latest)");
  app->add_option("--steps", args->steps, "student training steps (official: 150 x 100)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  app->add_option("--lr", args->lr, "constant AdamW learning rate (official linear_lr)")
      ->check(CLI::Range(0.0, 1e3));
  app->add_option("--batch", args->batch, "fresh sequences per step")
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--layers", args->layers, "layers to fit, from 0 (default: every softmax layer)")
      ->delimiter(',');
  app->add_option("--seed", args->seed,
                  "seed of the students' batches and initial weights (default: train.seed)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--quiet", args->quiet, "no progress line");
  app->add_flag("--json", args->json, "print the result as JSON");
  return {app, [args] { return run_linearize(*args); }};
}

}  // namespace mesalab::cli
