#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "analysis/probes.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/run_figures.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluation.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct ProbeArgs {
  std::string run_dir;
  std::string checkpoint;
  std::string target = "all";
  double lambda = 1e-3;
  uint64_t seed = 1;
  int batch = 256;
  double outlier_z = std::numeric_limits<double>::infinity();
  bool clean_target = false;
  std::optional<uint64_t> held_out_seed;
  bool json = false;
};

// Per target and layer: the mean loss over t and the loss at t = 1, T/4, T/2, T.
void print_table(const std::vector<ProbeResult>& results, const ControlResult* control) {
  const int T = results.front().seq_len;
  std::vector<int> steps = {1, std::max(1, T / 4), std::max(1, T / 2), T};
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  std::string header = fmt::format("  {:<8} {:<6} {:>11}", "target", "layer", "mean");
  for (int t : steps) header += fmt::format(" {:>11}", fmt::format("t={}", t));
  fmt::print("{}\n", header);
  for (const ProbeResult& r : results)
    for (int l = 0; l <= r.layers; ++l) {
      double sum = 0.0;
      for (int t = 0; t < T; ++t) sum += r.loss_at(t, l);
      std::string line =
          fmt::format("  {:<8} {:<6} {:>11.4g}", probe_target_name(r.target), l, sum / T);
      for (int t : steps) line += fmt::format(" {:>11.4g}", r.loss_at(t - 1, l));
      fmt::print("{}\n", line);
    }
  if (control != nullptr) {
    double sum = 0.0;
    for (double v : control->loss) sum += v;
    std::string line = fmt::format("  {:<8} {:<6} {:>11.4g}", "control", "-", sum / T);
    for (int t : steps) line += fmt::format(" {:>11.4g}", control->loss[size_t(t - 1)]);
    fmt::print("{}\n", line);
  }
}

int run_probe_command(const ProbeArgs& a) {
  if (!std::filesystem::is_directory(a.run_dir)) fail("no run directory at {}", a.run_dir);
  const RunConfig cfg = load_run_config(a.run_dir, {});
  // "all" = every target plus the control reference; "inverse" brings the control along.
  const std::vector<ProbeTarget> targets = parse_probe_targets(a.target, cfg.data);
  ProbeOptions options;
  options.features = probe_features(cfg.data);
  options.lambda = a.lambda;
  options.outlier_z = a.outlier_z;
  options.clean_target = a.clean_target;
  options.validate();
  if (a.batch < 1) fail("--batch must be >= 1, got {}", a.batch);
  const Transformer model(cfg.model);
  const std::filesystem::path ckpt = checkpoint_to_read(a.run_dir, a.checkpoint);
  const TrainState state = load_run_checkpoint(ckpt, cfg, model);
  const TokenBatch batch = make_token_batch(cfg, a.seed, RngPurpose::Probe, 0, a.batch);
  const LayerActivations acts = collect_activations(model, state.params.data(), batch);
  if (a.batch <= acts.width && !a.held_out_seed)
    fmt::print(stderr,
               "note: {} sequences <= {} activation channels: the in-sample fits can interpolate "
               "(use --batch > {})\n",
               a.batch, acts.width, acts.width);
  std::vector<ProbeResult> results;
  if (a.held_out_seed) {
    const TokenBatch score = make_token_batch(cfg, *a.held_out_seed, RngPurpose::Probe, 0, a.batch);
    const LayerActivations score_acts = collect_activations(model, state.params.data(), score);
    for (ProbeTarget t : targets)
      results.push_back(run_held_out_probe(acts, batch, score_acts, score, t, options));
  } else {
    for (ProbeTarget t : targets) results.push_back(run_probe(acts, batch, t, options));
  }
  const bool with_control =
      std::find(targets.begin(), targets.end(), ProbeTarget::InverseCurrent) != targets.end();
  ControlResult control;
  if (with_control) control = control_probe(batch, options);
  const ControlResult* control_ptr = with_control ? &control : nullptr;

  nlohmann::json report = probes_json(results, control_ptr);
  report["checkpoint"] = ckpt.string();
  report["step"] = state.step;
  report["seed"] = a.seed;
  report["batch"] = a.batch;
  report["lambda"] = a.lambda;
  if (std::find(targets.begin(), targets.end(), ProbeTarget::Implicit) != targets.end()) {
    const ControlResult reference = implicit_reference(batch);
    report["implicit_reference"] = {
        {"scale", kImplicitReferenceScale}, {"loss", reference.loss}, {"r2", reference.r2}};
  }
  report["clean_target"] = a.clean_target;
  report["held_out_seed"] = a.held_out_seed ? nlohmann::json(*a.held_out_seed) : nlohmann::json();
  report["outlier_z"] = std::isfinite(a.outlier_z) ? nlohmann::json(a.outlier_z) : nlohmann::json();
  const std::filesystem::path dir(a.run_dir);
  write_file_atomic(dir / "probes.csv", probes_csv(results, control_ptr));
  write_file_atomic(dir / "probes.json", report.dump(2) + "\n");
  const report::FigureFiles figure =
      write_run_figure(dir, "probes", report::probe_figure(results, control_ptr));
  if (a.json) {
    fmt::print("{}\n", report.dump());
    return 0;
  }
  fmt::print(
      "{} (step {}): {} linear probe loss sum (AP - Y)^2 / 2B on {} sequences (seed {}), "
      "layer 0 = input\n",
      ckpt.string(), state.step,
      a.held_out_seed ? fmt::format("held-out (scored on seed {})", *a.held_out_seed)
                      : std::string("in-sample"),
      a.batch, a.seed);
  print_table(results, control_ptr);
  fmt::print("per-(layer, t) losses and R^2: {}/probes.csv\n{}\n", a.run_dir, figure_line(figure));
  return 0;
}

}  // namespace

Command add_probe_command(CLI::App& root) {
  auto* app = root.add_subcommand("probe",
                                  "Linear probes (least squares, in-sample or held-out) of every "
                                  "layer's residual stream, per time step");
  auto args = std::make_shared<ProbeArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the latest)");
  app->add_option(
         "--target", args->target,
         "current (s_t), next (s_{t+1}), inverse ((sum_{i<t} s_i s_i^T + lambda I)^-1 "
         "s_t, with the control reference), implicit (0.5 p_t^T sum_{i<t} s_i s_{i+1}^T from the "
         "inverse probe p_t, with the 0.45 u_t^T C_t reference), features (phi(s_t), the nonlinear "
         "generator's feature map) or all (current, next, inverse; features too on nonlinear "
         "data)")
      ->capture_default_str();
  app->add_option("--lambda", args->lambda, "lambda of the inverse target")->capture_default_str();
  app->add_option("--seed", args->seed, "seed of the probe batch")->capture_default_str();
  app->add_option("--batch", args->batch, "sequences in the probe batch")->capture_default_str();
  app->add_option("--outlier-z", args->outlier_z,
                  "inverse/control: drop samples whose target-norm z-score is >= Z "
                  "(default: keep all)");
  app->add_flag("--clean-target", args->clean_target,
                "next: drop samples with an entry of s_t+1 >= 2 (the official clean_target_probe)");
  app->add_option("--held-out-seed", args->held_out_seed,
                  "fit on the --seed batch and score on a fresh batch of this seed (default: "
                  "in-sample, as the official code)");
  app->add_flag("--json", args->json, "print the result as JSON");
  return {app, [args] { return run_probe_command(*args); }};
}

}  // namespace mesalab::cli
