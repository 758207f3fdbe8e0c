#include <fmt/format.h>

#include "analysis/token_analysis.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/run_figures.hpp"
#include "report/seed_stats.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct TokensArgs {
  std::string run_dir, checkpoint;
  int layer = 1;
  int token = -1;
  int max_lag = 7;
  int batch = 256;
  std::vector<uint64_t> seeds{1, 11, 111, 1111, 11111};
  bool json = false;
};

int run_tokens(const TokensArgs& a) {
  const RunConfig cfg = load_run_config(a.run_dir, {});
  const Transformer model(cfg.model);
  const std::filesystem::path ckpt = checkpoint_to_read(a.run_dir, a.checkpoint);
  const TrainState state = load_run_checkpoint(ckpt, cfg, model);
  const LagProbeSeeds probes = lag_probes_over_seeds(model, state.params, cfg, a.seeds, a.batch,
                                                     a.layer, a.token, a.max_lag);
  const int token = probes.probed.at(0).token;
  nlohmann::json report = {{"checkpoint", ckpt.string()},
                           {"step", state.step},
                           {"layer", a.layer},
                           {"token", token},
                           {"seeds", a.seeds},
                           {"batch", a.batch}};
  for (const auto& [key, per_seed] :
       {std::pair{"input", &probes.input}, std::pair{"probed", &probes.probed}}) {
    nlohmann::json seeds = nlohmann::json::array();
    for (const LagProbes& p : *per_seed) seeds.push_back(lag_probes_json(p));
    report[key] = {{"per_seed", seeds}, {"mean_r2", mean_r2(*per_seed)}};
  }
  write_file_atomic(std::filesystem::path(a.run_dir) / "tokens.json", report.dump(2) + "\n");
  const std::vector<std::pair<std::string, std::vector<double>>> columns = {
      {"input (layer 0)", mean_r2(probes.input)},
      {fmt::format("after block {}", a.layer), mean_r2(probes.probed)}};
  const report::FigureFiles figure = write_run_figure(
      a.run_dir, "tokens",
      report::lag_figure(fmt::format("{} (step {}): which inputs the stream at token {} holds",
                                     a.run_dir, state.step, token),
                         columns));
  if (a.json) {
    fmt::print("{}\n", report.dump());
    return 0;
  }
  fmt::print("{} (step {}): R^2 of u_(t-k) from the stream at token t = {} ({} seeds x {})\n",
             ckpt.string(), state.step, token, a.seeds.size(), a.batch);
  fmt::print("  {:<18}", "lag k");
  for (size_t k = 0; k < columns[0].second.size(); ++k) fmt::print(" {:>7}", k);
  fmt::print("\n");
  for (const auto& [name, r2] : columns) {
    fmt::print("  {:<18}", name);
    for (double v : r2) fmt::print(" {:>7.3f}", v);
    fmt::print("\n");
  }
  fmt::print("{}\n", figure_line(figure));
  return 0;
}

}  // namespace

Command add_tokens_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "tokens", "Which earlier inputs a layer's stream holds at a token (token analysis)");
  auto args = std::make_shared<TokensArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the latest)");
  app->add_option("--layer", args->layer, "probed stream: after block L (0 = the input)")
      ->check(CLI::Range(0, 1000));
  app->add_option("--token", args->token, "token index t (default: the last, T - 1)")
      ->check(CLI::Range(0, 1000000));
  app->add_option("--max-lag", args->max_lag, "probe u_(t-k) for k = 0..K")
      ->check(CLI::Range(0, 100000));
  app->add_option("--batch", args->batch, "sequences per seed")->check(CLI::Range(1, 1 << 20));
  app->add_option("--seeds", args->seeds, "test seeds")->delimiter(',');
  app->add_flag("--json", args->json, "print the result as JSON");
  return {app, [args] { return run_tokens(*args); }};
}

}  // namespace mesalab::cli
