#pragma once
// Numbers over seeds, as the report states them: a finished run loaded back, its per-step
// test loss on the paper's test seeds, the baselines on the same batches, and mean and
// spread over training seeds.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "model/transformer.hpp"
#include "train/checkpoint.hpp"
#include "train/run_config.hpp"

namespace mesalab::report {

// Mean and sample standard deviation (0 for one value) of per-seed values.
struct SeedStats {
  double mean = 0.0, std = 0.0;
  int n = 0;
};
SeedStats seed_stats(const std::vector<double>& values);

// "0.829 ± 0.004" ("0.829" for one seed), `digits` significant digits.
std::string format_stats(const SeedStats& stats, int digits = 3);

// The element-wise mean of equally long curves (one per seed).
std::vector<double> mean_curve(const std::vector<std::vector<double>>& curves);

// A finished run: its resolved config, model and latest checkpoint.
struct LoadedRun {
  RunConfig cfg;
  Transformer model;
  TrainState state;
};
LoadedRun load_run(const std::filesystem::path& run_dir);

// loss_t (t = 1..T) of the run's model, averaged over one batch of `batch` sequences per
// test seed (RngPurpose::TestData, step 0: the paper's per-step curves).
std::vector<double> test_seed_curve(const LoadedRun& run, const std::vector<uint64_t>& test_seeds,
                                    int batch);

// The baselines (zero, copy, least squares, least squares all pairs, GD-1, and the delay and
// true-feature fits where the data have them) on the same test batches, each averaged over
// the test seeds; names as in analysis/baselines.hpp.
std::vector<std::pair<std::string, std::vector<double>>> baseline_curves(
    const DataConfig& data, const std::vector<uint64_t>& test_seeds, int batch,
    int delay_width = kDelayBaselineWidth);

// The curve called `name` in `curves`; fails naming it if absent.
const std::vector<double>& curve_named(
    const std::vector<std::pair<std::string, std::vector<double>>>& curves,
    const std::string& name);

}  // namespace mesalab::report
