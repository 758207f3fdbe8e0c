#include "report/seed_stats.hpp"

#include <fmt/format.h>

#include <cmath>

#include "analysis/baselines.hpp"
#include "core/error.hpp"
#include "train/evaluation.hpp"
#include "train/trainer.hpp"

namespace mesalab::report {

SeedStats seed_stats(const std::vector<double>& values) {
  SeedStats s;
  s.n = int(values.size());
  if (s.n == 0) return s;
  for (double v : values) s.mean += v;
  s.mean /= s.n;
  if (s.n > 1) {
    double ss = 0.0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    s.std = std::sqrt(ss / (s.n - 1));
  }
  return s;
}

std::string format_stats(const SeedStats& stats, int digits) {
  if (stats.n <= 1) return fmt::format("{:.{}g}", stats.mean, digits);
  return fmt::format("{:.{}g} ± {:.2g}", stats.mean, digits, stats.std);
}

std::vector<double> mean_curve(const std::vector<std::vector<double>>& curves) {
  if (curves.empty()) return {};
  std::vector<double> mean(curves.front().size(), 0.0);
  for (const auto& c : curves) {
    if (c.size() != mean.size())
      fail("curves of different lengths ({} and {})", c.size(), mean.size());
    for (size_t t = 0; t < c.size(); ++t) mean[t] += c[t];
  }
  for (double& v : mean) v /= double(curves.size());
  return mean;
}

LoadedRun load_run(const std::filesystem::path& run_dir) {
  RunConfig cfg = load_run_config(run_dir, {});
  Transformer model(cfg.model);
  TrainState state = load_run_checkpoint(checkpoint_to_read(run_dir, ""), cfg, model);
  return {std::move(cfg), std::move(model), std::move(state)};
}

std::vector<double> test_seed_curve(const LoadedRun& run, const std::vector<uint64_t>& test_seeds,
                                    int batch) {
  std::vector<TokenBatch> batches;
  for (uint64_t seed : test_seeds) batches.push_back(make_test_set(run.cfg, seed, 1, batch)[0]);
  BatchRunner<float> runner(run.model, batch, run.cfg.data.seq_len, /*forward_only=*/true);
  return per_step_loss(runner, run.state.params.data(), batches);
}

std::vector<std::pair<std::string, std::vector<double>>> baseline_curves(
    const DataConfig& data, const std::vector<uint64_t>& test_seeds, int batch, int delay_width) {
  std::vector<std::pair<std::string, std::vector<std::vector<double>>>> per_seed;
  for (uint64_t seed : test_seeds) {
    const BaselineReport r = run_baselines(data, seed, 1, batch, 1e-3, delay_width);
    if (per_seed.empty())
      for (const auto& [name, _] : r.curves) per_seed.push_back({name, {}});
    for (size_t i = 0; i < r.curves.size(); ++i) per_seed[i].second.push_back(r.curves[i].second);
  }
  std::vector<std::pair<std::string, std::vector<double>>> curves;
  for (const auto& [name, seeds] : per_seed) curves.push_back({name, mean_curve(seeds)});
  return curves;
}

const std::vector<double>& curve_named(
    const std::vector<std::pair<std::string, std::vector<double>>>& curves,
    const std::string& name) {
  for (const auto& [n, c] : curves)
    if (n == name) return c;
  fail("no curve named '{}'", name);
}

}  // namespace mesalab::report
