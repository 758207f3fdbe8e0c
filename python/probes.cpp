// Residual-stream activations and the linear probes of `mesalab probe`.
#include "analysis/probes.hpp"

#include <algorithm>
#include <limits>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "convert.hpp"

namespace mesalab::python {

namespace {

py::dict activations(const Model& model, const CArray<float>& params, int batch, uint64_t seed,
                     const std::string& purpose, uint64_t step) {
  require_params(params, model.transformer.num_params());
  if (batch < 1) fail("batch must be >= 1, got {}", batch);
  const RngPurpose p = parse_purpose(purpose);
  const float* w = params.data();
  TokenBatch b;
  LayerActivations acts;
  {
    py::gil_scoped_release release;
    b = make_token_batch(model.cfg, seed, p, step, batch);
    acts = collect_activations(model.transformer, w, b);
  }
  py::dict out;
  out["activations"] =
      to_numpy(std::move(acts.values), {acts.layers + 1, acts.seq_len, acts.batch, acts.width});
  out["tokens"] = to_numpy(std::move(b.tokens), {b.batch, b.seq_len, b.width});
  out["labels"] = to_numpy(std::move(b.labels), {b.batch, b.seq_len, b.dim});
  out["states"] = to_numpy(std::move(b.states), {b.batch, b.seq_len + 1, b.dim});
  return out;
}

py::dict control_dict(ControlResult&& c) {
  py::dict out;
  out["loss"] = to_numpy(std::move(c.loss));
  out["r2"] = to_numpy(std::move(c.r2));
  out["kept"] = to_numpy(std::move(c.kept));
  return out;
}

py::dict probe(const Model& model, const CArray<float>& params, const std::string& target,
               double lambda, uint64_t seed, int batch, std::optional<double> outlier_z,
               bool clean_target, std::optional<uint64_t> held_out_seed) {
  require_params(params, model.transformer.num_params());
  const std::vector<ProbeTarget> targets = parse_probe_targets(target, model.cfg.data);
  ProbeOptions options;
  options.lambda = lambda;
  options.features = probe_features(model.cfg.data);
  options.outlier_z = outlier_z.value_or(std::numeric_limits<double>::infinity());
  options.clean_target = clean_target;
  options.validate();
  if (batch < 1) fail("batch must be >= 1, got {}", batch);
  const bool with_control =
      std::find(targets.begin(), targets.end(), ProbeTarget::InverseCurrent) != targets.end();
  const bool with_implicit =
      std::find(targets.begin(), targets.end(), ProbeTarget::Implicit) != targets.end();
  const float* w = params.data();
  std::vector<ProbeResult> results;
  ControlResult control, reference;
  {
    py::gil_scoped_release release;
    const TokenBatch fit = make_token_batch(model.cfg, seed, RngPurpose::Probe, 0, batch);
    const LayerActivations acts = collect_activations(model.transformer, w, fit);
    if (held_out_seed) {
      const TokenBatch score =
          make_token_batch(model.cfg, *held_out_seed, RngPurpose::Probe, 0, batch);
      const LayerActivations score_acts = collect_activations(model.transformer, w, score);
      for (ProbeTarget t : targets)
        results.push_back(run_held_out_probe(acts, fit, score_acts, score, t, options));
    } else {
      for (ProbeTarget t : targets) results.push_back(run_probe(acts, fit, t, options));
    }
    if (with_control) control = control_probe(fit, options);
    if (with_implicit) reference = implicit_reference(fit);
  }
  py::dict probes;
  for (ProbeResult& r : results) {
    py::dict one;
    one["loss"] = to_numpy(std::move(r.loss), {r.seq_len, r.layers + 1});
    one["r2"] = to_numpy(std::move(r.r2), {r.seq_len, r.layers + 1});
    one["kept"] = to_numpy(std::move(r.kept));
    probes[py::str(std::string(probe_target_name(r.target)))] = one;
  }
  py::dict out;
  out["probes"] = probes;
  if (with_control) out["control"] = control_dict(std::move(control));
  if (with_implicit) out["implicit_reference"] = control_dict(std::move(reference));
  return out;
}

}  // namespace

void bind_probes(py::module_& m) {
  m.def("activations", &activations, py::arg("model"), py::arg("params"), py::arg("batch") = 256,
        py::arg("seed") = 1, py::arg("purpose") = "probe", py::arg("step") = 0,
        "the residual stream entering every layer and the final one, float64 (L+1, T, B, E), of "
        "the batch (seed, purpose, step), with its 'tokens', 'labels' and 'states'");
  m.def("probe", &probe, py::arg("model"), py::arg("params"), py::arg("target") = "all",
        py::arg("lambda_") = 1e-3, py::arg("seed") = 1, py::arg("batch") = 256,
        py::arg("outlier_z") = py::none(), py::arg("clean_target") = false,
        py::arg("held_out_seed") = py::none(),
        "`mesalab probe`: linear probes per layer and time step. target: current, next, "
        "inverse, implicit or all (the first three). Returns {'probes': {target: {'loss': (T, "
        "L+1), 'r2': (T, L+1), 'kept': (T,)}}, 'control' (with inverse), 'implicit_reference' "
        "(with implicit)}; index t is the paper's t + 1, layer 0 the input");
}

}  // namespace mesalab::python
