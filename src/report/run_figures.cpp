#include "report/run_figures.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "analysis/revalg.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"

namespace mesalab::report {

namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kPerStepLoss = "test loss (MSE/2)";

// A number under `key`; null (or, if optional, a missing key) is NaN.
double number_at(const nlohmann::json& line, const char* key, bool optional,
                 const std::string& where) {
  if (!line.contains(key)) {
    if (optional) return kMissing;
    fail("{}: no \"{}\"", where, key);
  }
  const nlohmann::json& v = line[key];
  if (v.is_null()) return kMissing;
  if (!v.is_number()) fail("{}: \"{}\" is not a number", where, key);
  return v.get<double>();
}

std::vector<double> time_steps(size_t count) {
  std::vector<double> t(count);
  for (size_t i = 0; i < count; ++i) t[i] = double(i + 1);
  return t;
}

std::string target_title(ProbeTarget target) {
  switch (target) {
    case ProbeTarget::Current:
      return "current state s_t";
    case ProbeTarget::Next:
      return "next state s_t+1";
    case ProbeTarget::InverseCurrent:
      return "preconditioned input (sum_i<t s_i s_i^T + lambda I)^-1 s_t";
    case ProbeTarget::Implicit:
      return "implicit target: s_t+1 = 0.5 p_t^T sum_i<t s_i s_i+1^T";
    case ProbeTarget::Features:
      return "features phi(s_t) of the nonlinear dynamics";
  }
  return std::string(probe_target_name(target));
}

Series control_series(const ControlResult& control) {
  return {"control", time_steps(control.loss.size()), control.loss, true};
}

Panel heatmap_panel(std::string title, std::string xlabel, std::string ylabel,
                    const RowMatrix<double>& m) {
  Panel p{std::move(title), std::move(xlabel), std::move(ylabel)};
  p.heatmap.rows = int(m.rows());
  p.heatmap.cols = int(m.cols());
  p.heatmap.values.assign(m.data(), m.data() + m.size());
  return p;
}

}  // namespace

std::vector<MetricsLine> parse_metrics(const std::string& text, const std::string& source) {
  std::vector<MetricsLine> lines;
  size_t begin = 0;
  for (int number = 1; begin < text.size(); ++number) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", source, number);
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("{}: not a JSON object: {}", where, line);
    MetricsLine m;
    const double step = number_at(j, "step", false, where);
    if (!std::isfinite(step)) fail("{}: \"step\" is null", where);
    m.step = int64_t(step);
    m.train_loss = number_at(j, "train_loss", true, where);
    m.test_loss = number_at(j, "test_loss", false, where);
    m.lr = number_at(j, "lr", false, where);
    m.elapsed_s = number_at(j, "elapsed_s", true, where);
    lines.push_back(m);
  }
  return lines;
}

std::vector<MetricsLine> read_metrics(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    fail("no metrics at {} (train writes one line per evaluation there)", path.string());
  return parse_metrics(read_file(path), path.string());
}

Figure training_figure(const std::vector<MetricsLine>& metrics, const std::string& title) {
  if (metrics.empty()) fail("figure '{}': no metrics lines to plot", title);
  Series train{"train loss"}, test{"test loss"}, lr{"learning rate"};
  for (const MetricsLine& m : metrics) {
    // train_loss is null on the first line (no step yet): that point does not exist.
    if (!std::isnan(m.train_loss)) {
      train.x.push_back(double(m.step));
      train.y.push_back(m.train_loss);
    }
    test.x.push_back(double(m.step));
    test.y.push_back(m.test_loss);
    lr.x.push_back(double(m.step));
    lr.y.push_back(m.lr);
  }
  Panel loss{"loss", "training step", "loss (MSE/2, mean over t)", false, true};
  loss.series = {train, test};
  Panel rate{"learning rate", "training step", "learning rate"};
  rate.series = {lr};
  return {title, {loss, rate}};
}

Figure per_step_figure(const std::string& title,
                       const std::vector<std::pair<std::string, std::vector<double>>>& columns,
                       size_t solid_columns) {
  if (columns.empty()) fail("figure '{}': no curves", title);
  Panel panel{"per-step test loss", "time step t", kPerStepLoss, false, true};
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& [name, curve] = columns[i];
    panel.series.push_back({name, time_steps(curve.size()), curve, i >= solid_columns});
  }
  return {title, {panel}};
}

Figure icl_figure(const std::string& title,
                  const std::vector<std::pair<std::string, std::vector<double>>>& columns,
                  size_t solid_columns) {
  if (columns.empty()) fail("figure '{}': no curves", title);
  Panel panel{"in-context linear regression", "examples in the context",
              "loss sum (pred - y)^2 / 2B", false, true};
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& [name, curve] = columns[i];
    std::vector<double> shots(curve.size());
    for (size_t j = 0; j < shots.size(); ++j) shots[j] = double(j);
    panel.series.push_back({name, shots, curve, i >= solid_columns});
  }
  return {title, {panel}};
}

Figure lag_figure(const std::string& title,
                  const std::vector<std::pair<std::string, std::vector<double>>>& columns) {
  if (columns.empty()) fail("figure '{}': no curves", title);
  Panel panel{"linear probes of earlier inputs", "lag k (probe target u_(t-k))", "R^2", false,
              false};
  for (const auto& [name, r2] : columns) {
    std::vector<double> lags(r2.size());
    for (size_t k = 0; k < lags.size(); ++k) lags[k] = double(k);
    panel.series.push_back({name, lags, r2, false});
  }
  return {title, {panel}};
}

Figure probe_figure(const std::vector<ProbeResult>& results, const ControlResult* control) {
  if (results.empty()) fail("figure 'linear probes': no probe results");
  Figure figure{"linear probes of the residual stream (in-sample least squares)"};
  bool control_drawn = false;
  for (const ProbeResult& r : results) {
    Panel panel{
        target_title(r.target), "time step t",
        r.target == ProbeTarget::Implicit ? "MSE of s_t+1" : "probe loss sum (AP - Y)^2 / 2B",
        false, true};
    for (int l = 0; l <= r.layers; ++l) {
      Series s{l == 0 ? "input" : fmt::format("layer {}", l), time_steps(size_t(r.seq_len))};
      for (int t = 0; t < r.seq_len; ++t) s.y.push_back(r.loss_at(t, l));
      panel.series.push_back(std::move(s));
    }
    if (control != nullptr && r.target == ProbeTarget::InverseCurrent) {
      panel.series.push_back(control_series(*control));
      control_drawn = true;
    }
    figure.panels.push_back(std::move(panel));
  }
  if (control != nullptr && !control_drawn) {
    Panel panel{"control: s_t+1 from the ideal preconditioned input", "time step t",
                "probe loss sum (AP - Y)^2 / 2B", false, true};
    panel.series.push_back(control_series(*control));
    figure.panels.push_back(std::move(panel));
  }
  return figure;
}

Figure weight_heatmap_figure(const Transformer& model, const double* params,
                             const std::string& title) {
  const ModelConfig& c = model.config();
  Figure figure{title};
  // Two heads per row (their W_Q W_K^T and W_V W_O side by side), or one for a single head.
  figure.columns = c.heads > 1 ? 4 : 2;
  for (int l = 0; l < c.layers(); ++l)
    for (int h = 0; h < c.heads; ++h) {
      const std::string head = fmt::format("layer {} head {}", l + 1, h + 1);
      figure.panels.push_back(heatmap_panel(head + ": W_Q W_K^T", "key token dimension",
                                            "query token dimension", head_qk(model, params, l, h)));
      figure.panels.push_back(heatmap_panel(head + ": W_V W_O", "output dimension",
                                            "value token dimension", head_pv(model, params, l, h)));
    }
  return figure;
}

Figure interpolation_figure(const InterpolationResult& r, const std::string& title) {
  if (r.points.empty()) fail("figure '{}': no interpolation points", title);
  Panel panel{"test loss during training", "training step", "mean test loss (MSE/2)", false, true};
  Series model{"transformer"}, mixed{fmt::format("interpolated (alpha = {:g})", r.alpha)};
  for (const InterpolationPoint& p : r.points) {
    model.x.push_back(double(p.step));
    model.y.push_back(p.model);
    mixed.x.push_back(double(p.step));
    mixed.y.push_back(p.interpolated);
  }
  const double first = model.x.front(), last = model.x.back();
  panel.series = {
      model, mixed, {"RevAlg-d (final weights)", {first, last}, {r.revalg_d, r.revalg_d}, true}};
  return {title, {panel}};
}

Figure linearization_figure(const std::string& title, const std::vector<Series>& ratios,
                            const std::vector<Series>& fit_curves) {
  if (ratios.empty()) fail("figure '{}': no linearization ratios", title);
  Panel panel{"spliced linear student vs original", "linearized layer",
              "test loss (spliced) / test loss (original)", false, false};
  double first = INFINITY, last = -INFINITY;
  for (const Series& s : ratios)
    for (double x : s.x) {
      first = std::min(first, x);
      last = std::max(last, x);
    }
  panel.series = ratios;
  if (first <= last)
    panel.series.push_back({"lossless (ratio 1)", {first, last}, {1.0, 1.0}, true});
  Figure figure{title, {panel}};
  if (!fit_curves.empty())
    figure.panels.push_back({"fit of the linear students", "student training step",
                             "training loss / zero student's loss", false, true, fit_curves});
  return figure;
}

Figure linearization_figure(const std::string& title, const LinearizationResult& result) {
  Series ratios{"model"};
  std::vector<Series> fits;
  for (const LayerLinearization& l : result.layers) {
    ratios.x.push_back(double(l.layer + 1));
    ratios.y.push_back(l.ratio);
    Series fit{fmt::format("layer {} ({})", l.layer + 1, mixer_name(l.kind))};
    for (size_t i = 0; i < l.fit_curve.size(); ++i) {
      fit.x.push_back(double(std::min(int64_t(i + 1) * result.record_every, result.steps)));
      fit.y.push_back(l.zero_loss > 0 ? l.fit_curve[i] / l.zero_loss : kMissing);
    }
    fits.push_back(std::move(fit));
  }
  return linearization_figure(title, {ratios}, fits);
}

}  // namespace mesalab::report
