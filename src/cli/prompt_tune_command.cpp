#include <fmt/format.h>

#include <cmath>

#include "analysis/icl.hpp"
#include "analysis/prompt_tuning.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "io/atomic_file.hpp"
#include "train/progress.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct PromptTuneArgs {
  std::string run_dir, checkpoint, what;
  int steps = kOfficialTuneSteps;
  double lr = 0.0;  // 0: the official default of `what`
  int batch = 0;    // 0: the official default of `what`
  int prefix_len = 5;
  int seq_len = 0;
  double noise = 0.0;
  uint64_t seed = 0;
  int test_batch = 256;
  bool quiet = false, json = false;
};

// Mean in-context loss of one format over the test seeds {1, 11, 111, 1111, 11111}.
double mean_icl_loss(const Transformer& model, const std::vector<float>& params, IclConfig cfg,
                     const PromptTokens& prompt, int batch) {
  double sum = 0.0;
  const std::vector<uint64_t> seeds{1, 11, 111, 1111, 11111};
  for (uint64_t seed : seeds)
    sum += curve_mean(icl_curves(model, params, cfg, prompt.eos, prompt.prefix, seed, batch).model);
  return sum / double(seeds.size());
}

int run_prompt_tune(const PromptTuneArgs& a) {
  const RunConfig cfg = load_run_config(a.run_dir, {});
  const Transformer model(cfg.model);
  const std::filesystem::path ckpt = checkpoint_to_read(a.run_dir, a.checkpoint);
  const TrainState state = load_run_checkpoint(ckpt, cfg, model);
  IclConfig icl = icl_config_of_run(cfg, a.seq_len, a.noise);
  const std::filesystem::path prompt_path = std::filesystem::path(a.run_dir) / kPromptFile;
  PromptTuneOptions options;
  options.what = a.what == "eos" ? PromptPart::Eos : PromptPart::Prefix;
  options.steps = a.steps;
  options.lr = a.lr > 0 ? a.lr : official_tune_lr(options.what);
  options.batch = a.batch > 0 ? a.batch : official_tune_batch(options.what);
  options.seed = a.seed;

  // The EOS starts from N(0, 1); the prefix from N(0, 1) next to the run's tuned EOS.
  PromptTokens start;
  if (options.what == PromptPart::Eos) {
    icl.format = IclFormat::Eos;
    start.eos = initial_prompt_tokens(PromptPart::Eos, 1, icl.dim, a.seed);
  } else {
    if (!std::filesystem::exists(prompt_path))
      fail("{} has no tuned EOS token ({}): run `mesalab prompt-tune {} --what eos` first",
           a.run_dir, prompt_path.string(), a.run_dir);
    start.eos = load_prompt(prompt_path, icl.dim).eos;
    icl.format = IclFormat::Prefix;
    icl.prefix_len = a.prefix_len;
    icl.validate();
    start.prefix = initial_prompt_tokens(PromptPart::Prefix, a.prefix_len, icl.dim, a.seed);
  }
  ProgressLine progress(fmt::format("prompt-tune {}", a.what), 0, a.steps, !a.quiet && !a.json);
  options.on_step = [&](int step, double loss) { progress.tick(step + 1, loss, NAN); };
  const PromptTuneResult tuned =
      tune_prompt(model, state.params, icl, start.eos, start.prefix, options);
  progress.finish();
  const PromptTokens result{tuned.eos, tuned.prefix};

  // Held-out comparison on the test seeds: before (the EOS format with the starting EOS, or
  // the EOS format alone for the prefix) and after tuning.
  IclConfig before_cfg = icl;
  PromptTokens before = start;
  if (options.what == PromptPart::Prefix) {
    before_cfg.format = IclFormat::Eos;
    before.prefix.clear();
  }
  const double loss_before = mean_icl_loss(model, state.params, before_cfg, before, a.test_batch);
  const double loss_after = mean_icl_loss(model, state.params, icl, result, a.test_batch);
  IclConfig plain_cfg = icl;
  plain_cfg.format = IclFormat::Plain;
  const double loss_plain = mean_icl_loss(model, state.params, plain_cfg, {}, a.test_batch);

  save_prompt(prompt_path, result, icl.dim,
              {{"checkpoint", ckpt.string()},
               {"step", std::to_string(state.step)},
               {"tuned", a.what},
               {"seq_len", std::to_string(icl.seq_len)}});
  const nlohmann::json report = {
      {"what", a.what},
      {"steps", a.steps},
      {"lr", options.lr},
      {"batch", options.batch},
      {"prefix_len", options.what == PromptPart::Prefix ? a.prefix_len : 0},
      {"seq_len", icl.seq_len},
      {"checkpoint", ckpt.string()},
      {"step", state.step},
      {"train_loss", tuned.losses},
      {"test_loss_plain", loss_plain},
      {"test_loss_before", loss_before},
      {"test_loss_after", loss_after},
      {"prompt", prompt_path.string()}};
  write_file_atomic(std::filesystem::path(a.run_dir) / "prompt_tune.json", report.dump(2) + "\n");
  if (a.json) {
    fmt::print("{}\n", report.dump());
    return 0;
  }
  const std::string before_name = options.what == PromptPart::Eos ? "EOS N(0,1)" : "+eos";
  const std::string after_name = options.what == PromptPart::Eos ? "+eos" : "+prefix+eos";
  fmt::print(
      "{} (step {}): {} {} steps; mean held-out in-context loss (5 seeds x {} tasks)\n"
      "  plain            {:.5f}\n  {:<16} {:.5f}\n  {:<16} {:.5f}\nsaved {}\n",
      ckpt.string(), state.step, a.what, a.steps, a.test_batch, loss_plain, before_name,
      loss_before, after_name, loss_after, prompt_path.string());
  return 0;
}

}  // namespace

Command add_prompt_tune_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "prompt-tune", "Tune an EOS token or a prefix for in-context regression (model frozen)");
  auto args = std::make_shared<PromptTuneArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_option("--what", args->what, "eos, or prefix (needs a tuned eos)")
      ->required()
      ->check(CLI::IsMember({"eos", "prefix"}));
  app->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the latest)");
  app->add_option("--steps", args->steps, "Adam steps (official: 5000)")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000000));
  app->add_option("--lr", args->lr, "learning rate (default 1e-3 for eos, 9e-4 for prefix)")
      ->check(CLI::Range(0.0, 1e3));
  app->add_option("--batch", args->batch, "tasks per step (default 64 for eos, 128 for prefix)")
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--prefix-len", args->prefix_len,
                  "prefix tokens P (the official 20 are for T = 224; 5 keeps that share of a "
                  "T = 50 context)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app->add_option("--seq-len", args->seq_len, "context length T (default: data.seq_len)")
      ->check(CLI::Range(6, 100000));
  app->add_option("--noise", args->noise, "std of the noise on y = W x")
      ->check(CLI::Range(0.0, 1e6));
  app->add_option("--seed", args->seed, "seed of the initial tokens and the training tasks");
  app->add_option("--test-batch", args->test_batch, "held-out tasks per test seed")
      ->check(CLI::Range(1, 1 << 20));
  app->add_flag("--quiet", args->quiet, "no progress line");
  app->add_flag("--json", args->json, "print the result as JSON");
  return {app, [args] { return run_prompt_tune(*args); }};
}

}  // namespace mesalab::cli
