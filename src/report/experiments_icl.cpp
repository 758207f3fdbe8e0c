// In-context learning in `mesalab reproduce` (SPEC_EXPERIMENTS 8, 9): the raw-token models
// trained on sequences run unchanged on few-shot regression tasks, before and after tuning an
// EOS token and then a prefix, next to least squares on the same examples.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "analysis/icl.hpp"
#include "analysis/prompt_tuning.hpp"
#include "core/stats.hpp"
#include "report/experiment_common.hpp"
#include "report/run_figures.hpp"

namespace mesalab::report {

namespace {

// The official prefix has 20 tokens for a T = 224 context; 5 keep that share of T = 50.
constexpr int kPrefixLen = 5;

// The run's EOS, then its prefix (next to the tuned EOS), each tuned from N(0, 1) with the
// official learning rates and batches.
PromptTokens tune_run_prompt(const LoadedRun& run, const IclConfig& base, int steps,
                             uint64_t seed) {
  PromptTuneOptions options;
  options.steps = steps;
  options.seed = seed;
  IclConfig cfg = base;
  cfg.format = IclFormat::Eos;
  options.what = PromptPart::Eos;
  options.lr = official_tune_lr(options.what);
  options.batch = official_tune_batch(options.what);
  PromptTokens prompt;
  prompt.eos = tune_prompt(run.model, run.state.params, cfg,
                           initial_prompt_tokens(PromptPart::Eos, 1, cfg.dim, seed), {}, options)
                   .eos;
  cfg.format = IclFormat::Prefix;
  cfg.prefix_len = kPrefixLen;
  options.what = PromptPart::Prefix;
  options.lr = official_tune_lr(options.what);
  options.batch = official_tune_batch(options.what);
  prompt.prefix =
      tune_prompt(run.model, run.state.params, cfg, prompt.eos,
                  initial_prompt_tokens(PromptPart::Prefix, kPrefixLen, cfg.dim, seed), options)
          .prefix;
  return prompt;
}

// Mean of the first n values.
double head_mean(const std::vector<double>& curve, size_t n) {
  return curve_mean(std::vector<double>(curve.begin(), curve.begin() + std::min(n, curve.size())));
}

}  // namespace

Outcome analyse_icl(const Context& ctx) {
  const int tune_steps = ctx.scale.quick ? 20 : kOfficialTuneSteps;
  Outcome out;
  Table table{
      fmt::format("In-context loss per example, mean over the first n examples that "
                  "every format has (mean ± std over training seeds; {} test seeds x {} "
                  "tasks); EOS and a {}-token prefix tuned {} steps",
                  ctx.scale.test_seeds.size(), ctx.scale.test_batch, kPrefixLen, tune_steps),
      {"model", "n", "base", "+eos", "+prefix+eos", "least squares (examples)"},
      {}};
  bool pass = true;
  std::vector<std::string> measured;
  for (const std::string& preset : ctx.experiment->presets) {
    std::vector<double> base, eos, prefix, lsq;
    std::vector<std::vector<std::vector<double>>> per_variant;  // [variant][seed] mean curves
    std::vector<std::string> names;
    size_t n = 0;
    for (uint64_t seed : ctx.seeds_of(preset)) {
      const LoadedRun run = load_run(ctx.run_dir({preset, seed}));
      const IclConfig cfg = icl_config_of_run(run.cfg, 0, 0.0);
      const PromptTokens prompt = tune_run_prompt(run, cfg, tune_steps, seed);
      const std::vector<IclVariant> variants = icl_variants(
          run.model, run.state.params, cfg, prompt, ctx.scale.test_seeds, ctx.scale.test_batch);
      per_variant.resize(variants.size());
      names.clear();
      for (size_t i = 0; i < variants.size(); ++i) {
        names.push_back(variants[i].name);
        per_variant[i].push_back(mean_curve(variants[i].per_seed));
      }
      n = per_variant[kIclPrefixEos].back().size();  // the fewest examples of all formats
      const auto head = [&](size_t variant) { return head_mean(per_variant[variant].back(), n); };
      base.push_back(head(kIclBase));
      eos.push_back(head(kIclEos));
      prefix.push_back(head(kIclPrefixEos));
      lsq.push_back(head(kIclLsqExamples));
    }
    Curves mean_curves;
    for (size_t i = 0; i < names.size(); ++i)
      mean_curves.emplace_back(names[i], mean_curve(per_variant[i]));
    std::stable_partition(mean_curves.begin(), mean_curves.end(),
                          [](const auto& c) { return !c.first.starts_with("least squares"); });
    const SeedStats b = seed_stats(base), e = seed_stats(eos), p = seed_stats(prefix),
                    l = seed_stats(lsq);
    table.rows.push_back({preset, std::to_string(n), format_stats(b, 4), format_stats(e, 4),
                          format_stats(p, 4), format_stats(l, 4)});
    pass = pass && e.mean <= 0.9 * b.mean && p.mean <= e.mean;
    measured.push_back(fmt::format("{}: base {}, +eos {}, +prefix+eos {}, least squares {}", preset,
                                   num(b.mean), num(e.mean), num(p.mean), num(l.mean)));
    out.figures.push_back(
        ctx.figure(icl_figure(fmt::format("{}: in-context regression (mean over seeds)", preset),
                              mean_curves, mean_curves.size() - 2),
                   "icl_" + preset, fmt::format("In-context loss per example, {}", preset)));
  }
  out.verdict = verdict_of(pass);
  out.measured = fmt::format("{} (criterion: +eos <= 0.9 x base, +prefix+eos <= +eos)",
                             fmt::join(measured, "; "));
  out.tables.push_back(table);
  out.notes.push_back(
      "Tasks: W ~ Haar, x ~ U[-r, r]^D with the run's data range, no noise; T = the run's "
      "sequence length (T/2 examples in the plain format, T/3 with EOS). Every sequence draws its "
      "own noise and inputs (the official generator's shared noise key is not reproduced).");
  out.notes.push_back(fmt::format(
      "Tuning as the official run_icl notebook: {} Adam steps, EOS at lr 1e-3 on 64 tasks per "
      "step, the prefix at lr 9e-4 on 128. The official ICL model is trained on T = {} (batch "
      "128, its own `icl` run) and tuned with a 20-token prefix; these models are the T = 50 "
      "raw-token runs, with a {}-token prefix.",
      kOfficialTuneSteps, kOfficialTuneSeqLen, kPrefixLen));
  return out;
}

}  // namespace mesalab::report
