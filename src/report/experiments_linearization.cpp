// Linearization in `mesalab reproduce` (SPEC_EXPERIMENTS 6): each softmax layer of a trained
// model is replaced by a linear-attention student fitted to its attention output, and the
// spliced model's test loss is compared with the original's. Headline models: the 2- and
// 6-layer softmax models on constructed tokens and the 7-layer full-fledged raw-token model;
// the sweep: the official dimension sweep (raw-token 7-layer models with T = 4D, E = 4D,
// K = 2D, presets linearization_softmax_d<D>).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "analysis/linearization.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/experiment_common.hpp"
#include "report/run_figures.hpp"
#include "train/presets.hpp"

namespace mesalab::report {

namespace {

namespace fs = std::filesystem;

constexpr double kMaxMedianRatio = 1.2;
constexpr int64_t kQuickSteps = 100;  // students' steps at --quick (official: 15000)

// The linearization of one run with the default options (those of `mesalab linearize`
// without flags): RUN/linearization.json if it was made from the same checkpoint step and
// settings, else computed and written there, so a rerun of reproduce (or the CLI before it)
// pays the students' fit once.
nlohmann::json linearization_of_run(const fs::path& run_dir, const Scale& scale) {
  const LoadedRun run = load_run(run_dir);
  LinearizeOptions options;
  options.layers = layers_to_linearize(run.cfg.model, {});
  options.steps = scale.quick ? kQuickSteps : kOfficialLinearizationSteps;
  options.seed = run.cfg.train.seed;
  const fs::path path = run_dir / "linearization.json";
  const nlohmann::json settings = linearization_settings_json(options, options.layers);
  if (fs::exists(path)) {
    const nlohmann::json stored = nlohmann::json::parse(read_file(path), nullptr, false);
    if (!stored.is_discarded() && stored.value("settings", nlohmann::json()) == settings &&
        stored.value("step", int64_t(-1)) == run.state.step)
      return stored;
  }
  nlohmann::json j =
      linearization_json(linearize(run.model, run.state.params, run.cfg, options), options);
  j["step"] = run.state.step;
  write_file_atomic(path, j.dump(2) + "\n");
  return j;
}

// Per layer (0-based), the seeds' values of one field of linearization.json's layers.
using PerLayer = std::map<int, std::vector<double>>;

void collect(const nlohmann::json& j, PerLayer& ratios, PerLayer& fits) {
  for (const nlohmann::json& l : j.at("layers")) {
    ratios[l.at("layer").get<int>()].push_back(l.at("ratio").get<double>());
    fits[l.at("layer").get<int>()].push_back(l.at("relative_fit_loss").get<double>());
  }
}

double median(std::vector<double> v) {
  if (v.empty()) fail("median of no values");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int dimension_of(const std::string& preset) { return preset_run_config(preset, {}).data.dim; }

}  // namespace

Outcome analyse_linearization(const Context& ctx) {
  Outcome out;
  Table table{
      "Per softmax layer (from 1): test loss (spliced) / test loss (original) on each run's "
      "fixed test set, and the student's held-out fit loss over the zero student's; mean ± "
      "std over training seeds",
      {"model", "layer", "ratio", "relative fit loss"},
      {}};
  bool pass = true;
  std::vector<std::string> measured;
  std::vector<Series> ratio_series;
  for (const std::string& preset : ctx.experiment->presets) {
    PerLayer ratios, fits;
    for (uint64_t seed : ctx.seeds_of(preset))
      collect(linearization_of_run(ctx.run_dir({preset, seed}), ctx.scale), ratios, fits);
    Series s{preset};
    std::vector<double> layer_means;
    for (const auto& [layer, values] : ratios) {
      const SeedStats r = seed_stats(values);
      table.rows.push_back({preset, std::to_string(layer + 1), format_stats(r, 4),
                            format_stats(seed_stats(fits.at(layer)), 3)});
      s.x.push_back(double(layer + 1));
      s.y.push_back(r.mean);
      layer_means.push_back(r.mean);
    }
    const double med = median(layer_means);
    pass = pass && med <= kMaxMedianRatio;
    measured.push_back(fmt::format("{}: median ratio {}", preset, num(med)));
    ratio_series.push_back(std::move(s));
  }
  out.tables.push_back(table);
  out.figures.push_back(
      ctx.figure(linearization_figure("Softmax layers replaced one at a time by a linear student",
                                      ratio_series),
                 "linearization", "Test loss of the spliced model over the original's, per layer"));

  // The dimension sweep: reported, not judged (one seed locally).
  Table sweep{
      "Dimension sweep (raw tokens, 7 softmax layers, T = 4D, E = 4D, K = 2D): ratio "
      "per layer, mean over training seeds",
      {"D"},
      {}};
  Panel vs_dim{"ratio against the data dimension", "data dimension D",
               "test loss (spliced) / test loss (original)", false, false};
  std::map<int, Series> per_layer;
  for (const std::string& preset : ctx.experiment->sweep_presets) {
    const int D = dimension_of(preset);
    PerLayer ratios, fits;
    for (uint64_t seed : ctx.seeds_of(preset))
      collect(linearization_of_run(ctx.run_dir({preset, seed}), ctx.scale), ratios, fits);
    std::vector<std::string> row{std::to_string(D)};
    for (const auto& [layer, values] : ratios) {
      if (sweep.header.size() <= size_t(layer) + 1)
        sweep.header.push_back(fmt::format("layer {}", layer + 1));
      const double mean = seed_stats(values).mean;
      row.push_back(num(mean));
      Series& s = per_layer[layer];
      s.name = fmt::format("layer {}", layer + 1);
      s.x.push_back(double(D));
      s.y.push_back(mean);
    }
    sweep.rows.push_back(row);
  }
  if (!sweep.rows.empty()) {
    for (auto& [_, s] : per_layer) vs_dim.series.push_back(std::move(s));
    out.tables.push_back(sweep);
    out.figures.push_back(ctx.figure(Figure{"Linearization over the data dimension", {vs_dim}},
                                     "linearization_dimensions",
                                     "Ratio per layer against the data dimension D"));
  }
  out.verdict = verdict_of(pass);
  out.measured = fmt::format("{} (criterion: <= {} for every headline model)",
                             fmt::join(measured, "; "), kMaxMedianRatio);
  out.notes.push_back(fmt::format(
      "Students: linear attention with the layer's H and K (and its positional part for the "
      "first layer of a positional_codes_qk model), fitted to the layer's attention output "
      "before the residual on {} steps of 64 fresh sequences (clip 1 + AdamW, lr 1e-3 "
      "constant, weight decay 0.05: the official Linearizer's settings); every layer's "
      "student sees the same batches. The fit is cached in each run's linearization.json.",
      ctx.scale.quick ? kQuickSteps : kOfficialLinearizationSteps));
  out.notes.push_back(
      "Dimension sweep: the official linearize_full models (run_linearization.ipynb; configs/"
      "config.py at c8c1e37: D in {4, 6, 10, 20, 40, 60}, T = 4D, E = 4D, K = 2D, seed 1's peak "
      "lr and epochs) with the paper's steps. D = 40 and 60 have presets "
      "(linearization_softmax_d40, _d60) but are not swept here: on the 2-core machine (busy) "
      "their training takes about 2 and 4 h and the students' 15000 steps about 6 and 18 h "
      "(D = 20: 40 min and 1.8 h); run them with `mesalab train --config ...` and `mesalab "
      "linearize`.");
  out.notes.push_back(
      "Criterion: the median over layers keeps a single copy layer (the first block of a "
      "raw-token model, which needs sharp positional attention) from deciding the verdict, "
      "and 1.2 allows a fifth more loss, small next to the gap between model families.");
  return out;
}

}  // namespace mesalab::report
