#pragma once
// What the analyses of `mesalab reproduce` share (report/experiments*.cpp): per-seed curves
// of a preset, the baselines on the default data, the per-step table, and the analyses
// defined outside the registry's file.
#include <string>
#include <utility>
#include <vector>

#include "report/experiment.hpp"
#include "report/seed_stats.hpp"
#include "train/run_config.hpp"

namespace mesalab::report {

using Curves = std::vector<std::pair<std::string, std::vector<double>>>;

// A number in a table or a measured line: 4 significant digits.
std::string num(double v);

inline Verdict verdict_of(bool pass) { return pass ? Verdict::Pass : Verdict::Differs; }

// The per-step curve of `preset` for each of its training seeds (on the scale's test seeds).
std::vector<std::vector<double>> seed_curves(const Context& ctx, const std::string& preset);

// The mean over t of each curve.
std::vector<double> curve_means(const std::vector<std::vector<double>>& curves);

// The data of the default preset (the constructed-token experiments all run on it).
DataConfig default_data(const Context& ctx);

// The baselines on the default data, averaged over the scale's test seeds.
Curves default_baselines(const Context& ctx);

// One row per curve: its mean over t and its value at a few time steps.
// means[i]: the curve's mean over t with its spread over seeds (one value for a baseline).
Table per_step_table(const Curves& curves, const std::vector<SeedStats>& means);

// Analyses defined outside the registry's file.
Outcome analyse_probes(const Context& ctx);                // experiments_probes.cpp
Outcome analyse_probes_depth(const Context& ctx);          // experiments_probes.cpp
Outcome analyse_depth_sweep(const Context& ctx);           // experiments_depth.cpp
Outcome analyse_interpolation(const Context& ctx);         // experiments_depth.cpp
Outcome analyse_icl(const Context& ctx);                   // experiments_icl.cpp
Outcome analyse_token_construction(const Context& ctx);    // experiments_tokens.cpp
Outcome analyse_sensitivity(const Context& ctx);           // experiments_sensitivity.cpp
Outcome analyse_partial_observations(const Context& ctx);  // experiments_partial.cpp
Outcome analyse_linearization(const Context& ctx);         // experiments_linearization.cpp

}  // namespace mesalab::report
