// The depth sweep of `mesalab reproduce`: LSA, softmax and mesa models of 1..6 (mesa 1..3)
// layers on constructed tokens, their loss against depth next to GD-1 and least squares, and
// the sparsity of every attention model's weight products.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "analysis/sparsity.hpp"
#include "core/stats.hpp"
#include "report/experiment_common.hpp"
#include "report/reproduce.hpp"
#include "report/run_figures.hpp"
#include "report/run_interpolation.hpp"

namespace mesalab::report {

namespace {

struct Family {
  std::string name;                  // "LSA"
  std::vector<std::string> presets;  // by depth, 1 layer first
};

const std::vector<Family>& depth_families() {
  static const std::vector<Family> families = {
      {"LSA",
       {"lsa_1layer", "paper_lsa_2layer", "lsa_3layer", "lsa_4layer", "lsa_5layer", "lsa_6layer"}},
      {"softmax",
       {"softmax_1layer", "softmax_2layer", "softmax_3layer", "softmax_4layer", "softmax_5layer",
        "softmax_6layer"}},
      {"mesa", {"mesa_1layer", "mesa_2layer", "mesa_3layer"}}};
  return families;
}

// Mean over the run's layers and heads of the share of entries above the threshold in
// W_Q W_K^T and W_V W_O; NaN for models with mesa layers (no attention products).
double mean_sparsity(const LoadedRun& run) {
  for (MixerKind kind : run.model.config().mixers)
    if (kind == MixerKind::Mesa) return std::nan("");
  const std::vector<double> params(run.state.params.begin(), run.state.params.end());
  double sum = 0.0;
  const auto heads = weight_sparsity(run.model, params.data(), kDefaultSparsityThreshold);
  for (const HeadSparsity& h : heads) sum += 0.5 * (h.qk + h.pv);
  return sum / double(heads.size());
}

struct DepthPoint {
  int layers = 0;
  std::vector<double> curve;  // mean over seeds
  SeedStats mean, last, sparsity;
};

}  // namespace

Outcome analyse_depth_sweep(const Context& ctx) {
  const Curves base = default_baselines(ctx);
  const std::vector<double>& gd1 = curve_named(base, "gd1");
  const std::vector<double>& lsq = curve_named(base, "least_squares");
  const double gd1_mean = curve_mean(gd1), lsq_mean = curve_mean(lsq);
  Outcome out;
  Table table{
      "Mean per-step test loss over t and at t = T (mean ± std over training seeds), "
      "and the share of entries of W_Q W_K^T and W_V W_O above 1% of their largest "
      "(mean over layers and heads)",
      {"model", "layers", "seeds", "mean over t", "t = T", "entries > 1%"},
      {}};
  Panel vs_depth{"mean per-step test loss vs depth", "layers", "mean test loss (MSE/2)", false,
                 true};
  bool pass = true;
  std::vector<std::string> measured;
  for (const Family& family : depth_families()) {
    std::vector<DepthPoint> points;
    Curves curves;
    for (size_t d = 0; d < family.presets.size(); ++d) {
      const std::string& preset = family.presets[d];
      std::vector<double> means, lasts, sparsity;
      std::vector<std::vector<double>> seed_curves_of;
      for (uint64_t seed : ctx.seeds_of(preset)) {
        const LoadedRun run = load_run(ctx.run_dir({preset, seed}));
        seed_curves_of.push_back(test_seed_curve(run, ctx.scale.test_seeds, ctx.scale.test_batch));
        means.push_back(curve_mean(seed_curves_of.back()));
        lasts.push_back(seed_curves_of.back().back());
        sparsity.push_back(mean_sparsity(run));
      }
      DepthPoint p{int(d) + 1, mean_curve(seed_curves_of), seed_stats(means), seed_stats(lasts),
                   seed_stats(sparsity)};
      table.rows.push_back({family.name, std::to_string(p.layers), std::to_string(means.size()),
                            format_stats(p.mean, 4), format_stats(p.last, 4),
                            std::isnan(p.sparsity.mean) ? "-" : format_stats(p.sparsity, 3)});
      curves.push_back({fmt::format("{}-{}", family.name, p.layers), p.curve});
      points.push_back(std::move(p));
    }
    Series s{family.name};
    for (const DepthPoint& p : points) {
      s.x.push_back(p.layers);
      s.y.push_back(p.mean.mean);
    }
    vs_depth.series.push_back(std::move(s));
    // The claim is about attention models getting deeper: LSA and softmax.
    if (family.name != "mesa") {
      const double first_gap = points.front().mean.mean - lsq_mean,
                   last_gap = points.back().mean.mean - lsq_mean;
      bool monotone = true;
      for (size_t d = 1; d < points.size(); ++d)
        monotone = monotone && points[d].mean.mean <= 1.02 * points[d - 1].mean.mean;
      pass = pass && monotone && last_gap <= 0.5 * first_gap;
      measured.push_back(fmt::format(
          "{}: {} (gap to least squares {:.3g} -> {:.3g}, ratio {:.2f}; {})", family.name,
          [&] {
            std::vector<std::string> v;
            for (const DepthPoint& p : points) v.push_back(num(p.mean.mean));
            return fmt::format("{}", fmt::join(v, ", "));
          }(),
          first_gap, last_gap, last_gap / first_gap,
          monotone ? "non-increasing within 2%" : "NOT non-increasing"));
    }
    curves.push_back({"GD-1 (tuned eta)", gd1});
    curves.push_back({"least squares", lsq});
    out.figures.push_back(ctx.figure(
        per_step_figure(fmt::format("{} models of increasing depth", family.name), curves,
                        family.presets.size()),
        "depth_" + family.name, fmt::format("Per-step test loss of the {} models", family.name)));
  }
  for (const auto& [name, value] :
       {std::pair{"GD-1 (tuned eta)", gd1_mean}, std::pair{"least squares", lsq_mean}})
    vs_depth.series.push_back({name, {1.0, 6.0}, {value, value}, true});
  out.figures.insert(out.figures.begin(),
                     ctx.figure(Figure{"Depth sweep on constructed tokens", {vs_depth}},
                                "depth_sweep", "Mean per-step test loss against depth"));
  out.verdict = verdict_of(pass);
  out.measured = fmt::format("mean loss by depth: {}; GD-1 {:.4g}, least squares {:.4g}",
                             fmt::join(measured, "; "), gd1_mean, lsq_mean);
  out.tables.push_back(table);
  out.notes.push_back(
      "Least squares here is the official baseline (pairs before t, ridge 1e-3). Sparsity is "
      "not defined for mesa layers, whose q, k, v feed a least-squares solve.");
  return out;
}

// ---- interpolation with RevAlg-d ------------------------------------------------------

Outcome analyse_interpolation(const Context& ctx) {
  const std::string preset = "lsa_2layer_k40";
  std::vector<double> model, mixed, revalg, replay;
  Outcome out;
  for (uint64_t seed : ctx.seeds_of(preset)) {
    RunInterpolationOptions options;
    options.overrides = {fmt::format("train.threads={}", default_jobs())};
    options.reuse = true;
    const InterpolationResult r = interpolate_run_dir(ctx.run_dir({preset, seed}), options);
    model.push_back(r.points.back().model);
    mixed.push_back(r.points.back().interpolated);
    revalg.push_back(r.revalg_d);
    replay.push_back(r.replay_max_difference);
    if (seed == ctx.seeds_of(preset).front())
      out.figures.push_back(ctx.figure(
          interpolation_figure(r, fmt::format("{} (seed {}): transformer, RevAlg-d and their "
                                              "50/50 interpolation",
                                              preset, seed)),
          "interpolation", "Test loss during the replayed training, first seed"));
  }
  const SeedStats model_s = seed_stats(model), mixed_s = seed_stats(mixed),
                  revalg_s = seed_stats(revalg);
  const double rel = (mixed_s.mean - model_s.mean) / model_s.mean;
  out.verdict = verdict_of(std::abs(rel) <= 0.10);
  out.measured = fmt::format(
      "final test loss: interpolated {:.4g} vs transformer {:.4g} ({:+.1f}%, criterion within "
      "10%); RevAlg-d alone {:.4g}",
      mixed_s.mean, model_s.mean, 100 * rel, revalg_s.mean);
  out.tables.push_back(
      {"Mean test loss on each run's fixed test set after the last step; mean "
       "± std over training seeds",
       {"model", "test loss"},
       {{"transformer", format_stats(model_s, 4)},
        {"50/50 interpolation with RevAlg-d", format_stats(mixed_s, 4)},
        {"RevAlg-d of the final weights", format_stats(revalg_s, 4)}}});
  out.notes.push_back(fmt::format(
      "Each run is replayed from its seed (the same trajectory: the largest difference between "
      "the replayed and the recorded test loss is {:.3g}) and at every evaluation its current "
      "weights are interpolated with the RevAlg-d of its final weights (SPEC_EXPERIMENTS 4).",
      *std::max_element(replay.begin(), replay.end())));
  return out;
}

}  // namespace mesalab::report
