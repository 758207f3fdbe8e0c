// The baselines (`mesalab baselines`) and the in-context GD fits, on the run's test set or on
// any states (B, T+1, D).
#include "analysis/baselines.hpp"

#include <optional>

#include "analysis/gd_step.hpp"
#include "analysis/revalg.hpp"
#include "arrays.hpp"
#include "bindings.hpp"
#include "convert.hpp"

namespace mesalab::python {

namespace {

// The states argument of the fits: (B, T+1, D) float64, read in place when it is already
// C-contiguous float64.
struct States {
  const double* data;
  int batch, seq_len, dim;
};

States states_of(const CArray<double>& states) {
  require_ndim(states, 3, "states");
  if (states.shape(0) < 1 || states.shape(1) < 2 || states.shape(2) < 1)
    fail("states must be (B, T+1, D) with B >= 1, T >= 1, D >= 1, got {}", shape_string(states));
  return {states.data(), int(states.shape(0)), int(states.shape(1)) - 1, int(states.shape(2))};
}

py::dict curves_dict(std::vector<std::pair<std::string, std::vector<double>>>&& curves) {
  py::dict out;
  for (auto& [name, curve] : curves) out[py::str(name)] = to_numpy(std::move(curve));
  return out;
}

py::dict baselines(const py::object& config, double ridge) {
  const RunConfig cfg = run_config_from(config);
  BaselineReport r;
  {
    py::gil_scoped_release release;
    r = run_baselines(cfg.data, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size,
                      ridge, cfg.delay_baseline_width());
  }
  py::dict out;
  out["gd_eta"] = r.gd_eta;
  out["curves"] = curves_dict(std::move(r.curves));
  return out;
}

py::dict baseline_curves(const CArray<double>& states, double ridge, std::optional<double> eta) {
  const States s = states_of(states);
  std::vector<std::pair<std::string, std::vector<double>>> curves;
  double gd_eta = 0.0;
  {
    py::gil_scoped_release release;
    gd_eta = eta.value_or(0.0);
    if (!eta) gd_eta = tune_gd_eta(s.data, s.batch, s.seq_len, s.dim);
    curves = {
        {"zero", zero_predictor_curve(s.data, s.batch, s.seq_len, s.dim)},
        {"copy", copy_predictor_curve(s.data, s.batch, s.seq_len, s.dim)},
        {"least_squares", least_squares_curve(s.data, s.batch, s.seq_len, s.dim, ridge, false)},
        {"least_squares_all_pairs",
         least_squares_curve(s.data, s.batch, s.seq_len, s.dim, ridge, true)},
        {"gd1", gd1_curve(s.data, s.batch, s.seq_len, s.dim, gd_eta)}};
  }
  py::dict out;
  out["gd_eta"] = gd_eta;
  out["curves"] = curves_dict(std::move(curves));
  return out;
}

double tune_eta(const CArray<double>& states, double clip) {
  const States s = states_of(states);
  py::gil_scoped_release release;
  return tune_clipped_gd_eta(s.data, s.batch, s.seq_len, s.dim, clip);
}

py::dict gd_step(const CArray<double>& states, std::optional<double> eta) {
  const States s = states_of(states);
  GdStepFit fit;
  std::vector<double> curve;
  {
    py::gil_scoped_release release;
    fit = eta ? fit_gd_step_at(s.data, s.batch, s.seq_len, s.dim, *eta)
              : fit_gd_step(s.data, s.batch, s.seq_len, s.dim);
    curve = gd_step_curve(fit, s.data, s.batch, s.seq_len, s.dim);
  }
  py::dict out;
  out["eta"] = fit.eta;
  out["loss"] = fit.loss;
  out["w0"] = to_numpy(std::move(fit.w0), {fit.dim, fit.dim});
  out["curve"] = to_numpy(std::move(curve));
  return out;
}

py::dict gd_w0(const CArray<double>& states) {
  const States s = states_of(states);
  GdW0Fit fit;
  std::vector<double> curve;
  {
    py::gil_scoped_release release;
    fit = fit_gd_w0(s.data, s.batch, s.seq_len, s.dim);
    curve = gd_w0_curve(fit, s.data, s.batch, s.seq_len, s.dim);
  }
  py::dict out;
  out["eta"] = fit.eta;
  out["w0"] = to_numpy(std::move(fit.w0), {fit.dim, fit.dim});
  out["curve"] = to_numpy(std::move(curve));
  return out;
}

}  // namespace

void bind_baselines(py::module_& m) {
  m.def("baselines", &baselines, py::arg("config") = py::none(), py::arg("ridge") = 1e-3,
        "`mesalab baselines`: GD-1's eta tuned on 512 held-out sequences, then the per-t loss "
        "curves of zero, copy, least_squares, least_squares_all_pairs and gd1 on the run's test "
        "set: {'gd_eta': float, 'curves': {name: (T,)}}");
  m.def("baseline_curves", &baseline_curves, py::arg("states"), py::arg("ridge") = 1e-3,
        py::arg("eta") = py::none(),
        "the same curves on given states (B, T+1, D); eta: GD-1's step (default: tuned on these "
        "states in closed form)");
  m.def("tune_gd_eta", &tune_eta, py::arg("states"), py::arg("clip") = 0.0,
        "GD-1's best eta on states (B, T+1, D); with clip > 0 the predictions are clipped as a "
        "1-layer model's readout");
  m.def("gd_step", &gd_step, py::arg("states"), py::arg("eta") = py::none(),
        "one GD step from a learned W0 fitted on states (B, T+1, D) (at a fixed eta if given): "
        "{'eta', 'loss', 'w0': (D, D), 'curve': (T,)}");
  m.def("gd_w0", &gd_w0, py::arg("states"),
        "GD-1 plus a learned linear term s_t^T W0 fitted on states: {'eta', 'w0', 'curve'}");
}

}  // namespace mesalab::python
