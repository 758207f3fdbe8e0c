#include "report/experiment_common.hpp"

#include <fmt/format.h>

#include "core/stats.hpp"
#include "train/presets.hpp"

namespace mesalab::report {

std::string num(double v) { return fmt::format("{:.4g}", v); }

std::vector<std::vector<double>> seed_curves(const Context& ctx, const std::string& preset) {
  std::vector<std::vector<double>> curves;
  for (uint64_t seed : ctx.seeds_of(preset))
    curves.push_back(test_seed_curve(load_run(ctx.run_dir({preset, seed})), ctx.scale.test_seeds,
                                     ctx.scale.test_batch));
  return curves;
}

std::vector<double> curve_means(const std::vector<std::vector<double>>& curves) {
  std::vector<double> means;
  for (const auto& c : curves) means.push_back(curve_mean(c));
  return means;
}

DataConfig default_data(const Context& ctx) {
  return preset_run_config("paper_lsa_2layer", ctx.scale.overrides).data;
}

Curves default_baselines(const Context& ctx) {
  return baseline_curves(default_data(ctx), ctx.scale.test_seeds, ctx.scale.test_batch);
}

Table per_step_table(const Curves& curves, const std::vector<SeedStats>& means) {
  Table table{"Per-step test loss; the mean over t is mean ± std over training seeds",
              {"model", "mean over t", "t = 5", "t = 12", "t = 30", "t = T"},
              {}};
  for (size_t i = 0; i < curves.size(); ++i) {
    const std::vector<double>& c = curves[i].second;
    auto at = [&](size_t t) { return t <= c.size() ? num(c[t - 1]) : std::string("-"); };
    table.rows.push_back(
        {curves[i].first, format_stats(means[i], 4), at(5), at(12), at(30), num(c.back())});
  }
  return table;
}

}  // namespace mesalab::report
