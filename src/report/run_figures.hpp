#pragma once
// The figures of a run's results, shared by the commands that compute the results (plot,
// eval, probe, revalg) and by `mesalab reproduce`: each builder turns results into a
// report::Figure and does no file I/O (write_figure does). Losses are drawn on a log axis;
// reference curves (baselines, the probe control) are dashed.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "analysis/interpolation.hpp"
#include "analysis/linearization.hpp"
#include "analysis/probes.hpp"
#include "model/transformer.hpp"
#include "report/figure.hpp"

namespace mesalab::report {

// One line of a run's metrics.jsonl (train/trainer.cpp writes one per evaluation).
struct MetricsLine {
  int64_t step = 0;
  double train_loss = 0.0;  // mean since the previous line; NaN when null (no step yet)
  double test_loss = 0.0;   // mean per-step test loss over t
  double lr = 0.0;
  double elapsed_s = 0.0;  // NaN if missing
};

// Parses the text of a metrics.jsonl; `source` names it in errors, which give the line
// number: "runs/x/metrics.jsonl:3: ...". Blank lines are skipped.
std::vector<MetricsLine> parse_metrics(const std::string& text, const std::string& source);

// parse_metrics of the file; throws Error if it does not exist or cannot be read.
std::vector<MetricsLine> read_metrics(const std::filesystem::path& path);

// Two panels against the training step: train and test loss (log y), and the learning rate.
// Throws Error if `metrics` is empty.
Figure training_figure(const std::vector<MetricsLine>& metrics,
                       const std::string& title = "training");

// Per-time-step curves (t = 1..T, one series per column, in order) on a log axis; the first
// `solid_columns` columns are drawn solid (the models), the others dashed (references).
// Throws Error if there are no columns.
Figure per_step_figure(const std::string& title,
                       const std::vector<std::pair<std::string, std::vector<double>>>& columns,
                       size_t solid_columns = 1);

// In-context regression: the loss of predicting y_j against the number of examples seen
// before it (0, 1, ...), log y; the first `solid_columns` columns solid (the model's
// variants), the others dashed (least squares).
Figure icl_figure(const std::string& title,
                  const std::vector<std::pair<std::string, std::vector<double>>>& columns,
                  size_t solid_columns);

// R^2 of decoding u_{t-k} from the stream at token t against the lag k, one line per probed
// layer (linear axes).
Figure lag_figure(const std::string& title,
                  const std::vector<std::pair<std::string, std::vector<double>>>& columns);

// One panel per probe target with one line per probed layer ("input", "layer 1", ...): probe
// loss against t (log y). The control, if given, is a dashed line in the inverse-target
// panel (in a panel of its own if there is none). Throws Error if `results` is empty.
Figure probe_figure(const std::vector<ProbeResult>& results, const ControlResult* control);

// Heat maps of M_QK = Wq_h Wk_h^T and M_PV = Wv_h P_h (E x E, analysis/revalg.hpp) for every
// layer and head, side by side, titled "layer l head h: W_Q W_K^T" / "... W_V W_O" (l, h from
// 1). params: the model's parameters as double.
Figure weight_heatmap_figure(const Transformer& model, const double* params,
                             const std::string& title = "attention weights per head");

// Test loss against the training step of the replayed transformer and of its interpolation
// with RevAlg-d, and RevAlg-d's level as a dashed line (log y).
Figure interpolation_figure(const InterpolationResult& result, const std::string& title);

// Linearization: test_loss(spliced) / test_loss(original) against the linearized layer,
// numbered from 1 (the paper's "layer d"), one series per model in `ratios` (x = layer,
// y = ratio), with the lossless ratio 1 dashed across them. With `fit_curves` (x = step,
// y = a student's training loss over its zero student's), a second panel on a log axis.
// Throws Error if `ratios` is empty.
Figure linearization_figure(const std::string& title, const std::vector<Series>& ratios,
                            const std::vector<Series>& fit_curves = {});

// The figure of one run's linearization: its ratios and every student's fit curve.
Figure linearization_figure(const std::string& title, const LinearizationResult& result);

}  // namespace mesalab::report
