#include <fmt/format.h>

#include "analysis/icl.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/run_figures.hpp"
#include "report/seed_stats.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct IclArgs {
  std::string run_dir, checkpoint;
  int seq_len = 0;
  double noise = 0.0;
  int switch_at = 0;
  int batch = 256;
  std::vector<uint64_t> seeds{1, 11, 111, 1111, 11111};
  bool json = false;
};

int run_icl(const IclArgs& a) {
  const RunConfig cfg = load_run_config(a.run_dir, {});
  const Transformer model(cfg.model);
  const std::filesystem::path ckpt = checkpoint_to_read(a.run_dir, a.checkpoint);
  const TrainState state = load_run_checkpoint(ckpt, cfg, model);
  IclConfig icl = icl_config_of_run(cfg, a.seq_len, a.noise);
  icl.switch_pair = a.switch_at;
  icl.validate();
  const std::filesystem::path prompt_path = std::filesystem::path(a.run_dir) / kPromptFile;
  const PromptTokens prompt =
      std::filesystem::exists(prompt_path) ? load_prompt(prompt_path, icl.dim) : PromptTokens{};
  const std::vector<IclVariant> variants =
      icl_variants(model, state.params, icl, prompt, a.seeds, a.batch);
  nlohmann::json report = icl_variants_json(variants);
  report["checkpoint"] = ckpt.string();
  report["step"] = state.step;
  report["seq_len"] = icl.seq_len;
  report["noise"] = icl.noise;
  report["switch_at"] = icl.switch_pair;
  report["seeds"] = a.seeds;
  report["batch"] = a.batch;
  report["prompt"] = prompt.eos.empty() ? "" : prompt_path.string();
  write_file_atomic(std::filesystem::path(a.run_dir) / "icl.json", report.dump(2) + "\n");
  std::vector<std::pair<std::string, std::vector<double>>> columns;
  for (const IclVariant& v : variants) columns.emplace_back(v.name, report::mean_curve(v.per_seed));
  // The model's variants solid, the least-squares references dashed.
  std::stable_partition(columns.begin(), columns.end(),
                        [](const auto& c) { return !c.first.starts_with("least squares"); });
  const report::FigureFiles figure = write_run_figure(
      a.run_dir, "icl",
      report::icl_figure(
          fmt::format(
              "{} (step {}): in-context regression, T = {}{}", a.run_dir, state.step, icl.seq_len,
              icl.switch_pair > 0 ? fmt::format(", new task from example {}", icl.switch_pair + 1)
                                  : ""),
          columns, columns.size() - 2));
  if (a.json) {
    fmt::print("{}\n", report.dump());
    return 0;
  }
  fmt::print("{} (step {}): in-context loss averaged over the examples, {} seeds x {} tasks\n",
             ckpt.string(), state.step, a.seeds.size(), a.batch);
  for (const IclVariant& v : variants) {
    std::vector<double> means;
    for (const auto& curve : v.per_seed) means.push_back(curve_mean(curve));
    fmt::print("  {:<26} {} ({} examples)\n", v.name,
               report::format_stats(report::seed_stats(means), 4), v.per_seed.at(0).size());
  }
  if (prompt.eos.empty())
    fmt::print("  (no tuned prompt: `mesalab prompt-tune {} --what eos` adds +eos)\n", a.run_dir);
  fmt::print("{}\n", figure_line(figure));
  return 0;
}

}  // namespace

Command add_icl_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "icl", "In-context linear regression with a run's raw-token model, next to least squares");
  auto args = std::make_shared<IclArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the latest)");
  app->add_option("--seq-len", args->seq_len,
                  "context length T (T/2 examples in the plain format; default: data.seq_len)")
      ->check(CLI::Range(6, 100000));
  app->add_option("--noise", args->noise, "std of the noise on y = W x")
      ->check(CLI::Range(0.0, 1e6));
  app->add_option("--switch-at", args->switch_at,
                  "a second task from example K+1 on (0: one task; K < T/3)")
      ->check(CLI::Range(0, 100000));
  app->add_option("--batch", args->batch, "tasks per seed")->check(CLI::Range(1, 1 << 20));
  app->add_option("--seeds", args->seeds, "test seeds")->delimiter(',');
  app->add_flag("--json", args->json, "print the result as JSON");
  return {app, [args] { return run_icl(*args); }};
}

}  // namespace mesalab::cli
