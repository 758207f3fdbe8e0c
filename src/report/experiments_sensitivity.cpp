// Sensitivity over training in `mesalab reproduce` (SPEC_EXPERIMENTS 7): as a raw-token model
// trains, the output of its first (softmax) block at token k becomes sensitive to the few
// inputs just before k, the copy that builds the mesa optimizer's data set. Read from the
// records the runs made during training (train.sensitivity_every), or computed from their
// stored step checkpoints (and their initialisation).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "analysis/sensitivity_run.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/experiment_common.hpp"
#include "report/sensitivity_figures.hpp"
#include "train/trainer.hpp"

namespace mesalab::report {

namespace {

constexpr int kShownLags = 5;  // the official analysis_range

// The run's records from RUN/sensitivity.jsonl if they reach its last step, kept at step 0,
// the checkpoint steps and the last step (the curve the checkpoints give, which a reproduction
// that spans sessions keeps only as records); else computed from the step checkpoints.
std::vector<SensitivityRecord> run_records(const std::filesystem::path& run_dir, int batch) {
  const std::filesystem::path jsonl = run_dir / "sensitivity.jsonl";
  if (std::filesystem::exists(jsonl)) {
    const RunConfig cfg = load_run_config(run_dir, {});
    const std::vector<SensitivityRecord> all =
        parse_sensitivity_jsonl(read_file(jsonl), jsonl.string());
    if (!all.empty() && all.back().step == cfg.train.steps && all.back().table.batch == batch) {
      std::vector<SensitivityRecord> kept;
      for (const SensitivityRecord& r : all)
        if (r.step % cfg.train.checkpoint_every == 0 || r.step == cfg.train.steps)
          kept.push_back(r);
      return kept;
    }
  }
  std::vector<SensitivityRecord> records;
  for (const RunSensitivity& r : run_sensitivity(run_dir, /*every_checkpoint=*/true, batch))
    records.push_back(r.record);
  return records;
}

// The element-wise mean of the seeds' records, which must have the same steps and targets.
std::vector<SensitivityRecord> mean_over_seeds(
    const std::vector<std::vector<SensitivityRecord>>& seeds) {
  std::vector<SensitivityRecord> mean = seeds.at(0);
  for (size_t s = 1; s < seeds.size(); ++s) {
    if (seeds[s].size() != mean.size())
      fail("sensitivity: the seeds' runs have {} and {} checkpoints", mean.size(), seeds[s].size());
    for (size_t r = 0; r < mean.size(); ++r) {
      if (seeds[s][r].step != mean[r].step || seeds[s][r].table.targets != mean[r].table.targets)
        fail("sensitivity: the seeds' checkpoints differ (step {} vs {})", mean[r].step,
             seeds[s][r].step);
      for (size_t i = 0; i < mean[r].table.values.size(); ++i)
        for (size_t j = 0; j < mean[r].table.values[i].size(); ++j)
          mean[r].table.values[i][j] += seeds[s][r].table.values[i][j];
    }
  }
  for (SensitivityRecord& r : mean)
    for (auto& row : r.table.values)
      for (double& v : row) v /= double(seeds.size());
  return mean;
}

// The mean of S_k(j) over the old positions j <= k - 5.
double old_mean(const SensitivityTable& t, size_t i) {
  const int k = t.targets[i];
  double sum = 0.0;
  for (int j = 0; j <= k - kShownLags; ++j) sum += t.values[i][size_t(j)];
  return sum / (k - kShownLags + 1);
}

}  // namespace

Outcome analyse_sensitivity(const Context& ctx) {
  Outcome out;
  Table table{fmt::format("Sensitivity of the first block's output at the last token k = T - 1 to "
                          "u_(k-lag) (mean over training seeds; {} test sequences of each run)",
                          kSensitivityBatch),
              {"model", "step"},
              {}};
  for (int lag = 0; lag <= kShownLags; ++lag) table.header.push_back(fmt::format("lag {}", lag));
  table.header.push_back("mean, j <= k - 5");
  table.header.push_back("lag 1 / old (± std over seeds)");
  bool pass = true;
  std::vector<std::string> measured;
  for (const std::string& preset : ctx.experiment->presets) {
    std::vector<std::vector<SensitivityRecord>> per_seed;
    for (uint64_t seed : ctx.seeds_of(preset)) {
      per_seed.push_back(run_records(ctx.run_dir({preset, seed}), kSensitivityBatch));
    }
    const std::vector<SensitivityRecord> mean = mean_over_seeds(per_seed);
    const size_t last = mean.front().table.targets.size() - 1;  // k = T - 1
    if (mean.front().table.targets[last] < kShownLags)
      fail("sensitivity: {} has T = {}, too short for lags up to {}", preset,
           mean.front().table.targets[last] + 1, kShownLags);
    // Rows: the initialisation, the first checkpoint, the middle one and the final one.
    std::vector<size_t> rows = {0, std::min<size_t>(1, mean.size() - 1), mean.size() / 2,
                                mean.size() - 1};
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    for (size_t r : rows) {
      const SensitivityTable& t = mean[r].table;
      std::vector<std::string> cells{preset, r == 0 ? "0 (init)" : std::to_string(mean[r].step)};
      for (int lag = 0; lag <= kShownLags; ++lag) cells.push_back(num(t.at_lag(last, lag)));
      cells.push_back(num(old_mean(t, last)));
      std::vector<double> ratios;
      for (const auto& seed : per_seed) ratios.push_back(seed[r].table.previous_to_old_ratio(last));
      cells.push_back(format_stats(seed_stats(ratios), 3));
      table.rows.push_back(cells);
    }
    std::vector<double> final_ratios;
    for (const auto& seed : per_seed)
      final_ratios.push_back(seed.back().table.previous_to_old_ratio(last));
    const SeedStats final_ratio = seed_stats(final_ratios);
    std::vector<double> init_ratios;
    for (const auto& seed : per_seed)
      init_ratios.push_back(seed.front().table.previous_to_old_ratio(last));
    pass = pass && final_ratio.mean >= 2.0;
    measured.push_back(fmt::format("{}: lag 1 / old {} at step {} ({} at init)", preset,
                                   num(final_ratio.mean), mean.back().step,
                                   num(seed_stats(init_ratios).mean)));
    out.figures.push_back(ctx.figure(
        sensitivity_training_figure(
            fmt::format("{}: first-block sensitivity to earlier inputs over training", preset),
            mean, kShownLags),
        "sensitivity_training_" + preset,
        fmt::format("Sensitivity over training, {} (mean over seeds)", preset)));
    out.figures.push_back(ctx.figure(
        sensitivity_lag_figure(fmt::format("{}: sensitivity against the lag", preset), mean),
        "sensitivity_lag_" + preset,
        fmt::format("Sensitivity against the lag at a few steps, {}", preset)));
  }
  out.verdict = verdict_of(pass);
  out.measured =
      fmt::format("{} (criterion: >= 2 at the final checkpoint)", fmt::join(measured, "; "));
  out.tables.push_back(table);
  out.notes.push_back(
      "S_k(j) = 1/E sum_l 1/B sum_b ||d x_1[b,k,l] / d u[b,j,:]||: the gradient of the first "
      "block's output (after its clip) with respect to the raw input tokens, as the official "
      "fast_sensitivity; exact (one backward per output channel through the first block), on "
      "the first 64 sequences of each run's test batch 0, at the initialisation and every "
      "stored step checkpoint (the official code records it every epoch of 100 steps).");
  out.notes.push_back(
      "lag 0 includes the residual path u_k -> x_1[k], so the criterion compares lag 1 with "
      "the positions j <= k - 5.");
  return out;
}

}  // namespace mesalab::report
