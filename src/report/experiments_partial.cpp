// Partial observations in `mesalab reproduce` (SPEC_EXPERIMENTS 1d): models that see only
// o_t = C s_t + noise, next to least squares on the delay-stacked observations (the official
// lsq_partobs), which is what a mesa optimizer regressing on the delay tokens would compute.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "report/experiment_common.hpp"
#include "report/run_figures.hpp"
#include "train/presets.hpp"

namespace mesalab::report {

Outcome analyse_partial_observations(const Context& ctx) {
  Outcome out;
  std::vector<std::string> presets = ctx.experiment->presets;
  presets.insert(presets.end(), ctx.experiment->sweep_presets.begin(),
                 ctx.experiment->sweep_presets.end());
  // Every preset runs on the same sequences (checked; only the token format differs), so one
  // set of baselines serves them all.
  const RunConfig cfg = preset_run_config(presets.front(), ctx.scale.overrides);
  const auto sequences_of = [](const RunConfig& c) {
    nlohmann::json data = c.resolved.at("data");
    data.erase("tokens");
    return data;
  };
  for (const std::string& preset : presets) {
    const RunConfig other = preset_run_config(preset, ctx.scale.overrides);
    if (sequences_of(other) != sequences_of(cfg))
      fail("partial observations: preset {} runs on other data than {}", preset, presets.front());
  }
  const Curves base = baseline_curves(cfg.data, ctx.scale.test_seeds, ctx.scale.test_batch,
                                      cfg.delay_baseline_width());
  const std::vector<double>& delay = curve_named(base, "least_squares_delay");
  const double delay_mean = curve_mean(delay);
  Curves curves;
  std::vector<SeedStats> means;
  bool pass = true;
  std::vector<std::string> measured;
  for (const std::string& preset : presets) {
    const std::vector<std::vector<double>> seeds = seed_curves(ctx, preset);
    const SeedStats s = seed_stats(curve_means(seeds));
    pass = pass && s.mean <= 1.10 * delay_mean;
    measured.push_back(fmt::format("{} {} ({:.2f} x)", preset, num(s.mean), s.mean / delay_mean));
    curves.push_back({preset, mean_curve(seeds)});
    means.push_back(s);
  }
  for (const char* name : {"least_squares_delay", "least_squares", "gd1", "zero"}) {
    curves.push_back({name, curve_named(base, name)});
    means.push_back(seed_stats({curve_mean(curve_named(base, name))}));
  }
  out.verdict = verdict_of(pass);
  out.measured = fmt::format(
      "{} vs least squares on delay-stacked observations {} (criterion: every model <= 1.10 x)",
      fmt::join(measured, ", "), num(delay_mean));
  out.tables.push_back(per_step_table(curves, means));
  out.figures.push_back(ctx.figure(
      per_step_figure(fmt::format("Partially observed linear systems (D = {}, {} observed)",
                                  cfg.data.dim, cfg.data.obs_dim),
                      curves),
      "partial_observations", "Per-step test loss, mean over seeds, next to the baselines"));
  out.notes.push_back(fmt::format(
      "least_squares_delay regresses o_(t+1) on the delay vector [o_t, o_(t-1), ...] of width {} "
      "(ridge 1e-3, the latest pair left out as the official solver); least_squares regresses "
      "o_(t+1) on o_t alone, which cannot recover the hidden state.",
      cfg.delay_baseline_width()));
  return out;
}

}  // namespace mesalab::report
