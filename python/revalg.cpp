// Reverse-engineering trained weights (`mesalab revalg`): block structure of Wq Wk^T and
// Wv Wo, the RevAlg-1 closed form of a 1-layer LSA, RevAlg-d, sparsity, and the
// interpolation with RevAlg-d (`mesalab interpolate`).
#include "analysis/revalg.hpp"

#include <pybind11/stl.h>

#include "analysis/interpolation.hpp"
#include "analysis/revalg_d.hpp"
#include "analysis/sparsity.hpp"
#include "arrays.hpp"
#include "bindings.hpp"
#include "convert.hpp"
#include "report/run_interpolation.hpp"

namespace mesalab::python {

namespace {

using Curves = std::vector<std::pair<std::string, std::vector<double>>>;

py::dict curves_dict(Curves&& curves) {
  py::dict out;
  for (auto& [name, curve] : curves) out[py::str(name)] = to_numpy(std::move(curve));
  return out;
}

// One product (M_QK or M_PV) of every layer and head: (L, H, 4, 4) block statistics and
// (L, H) totals.
py::dict grids_dict(const std::vector<LayerStructure>& structure, bool qk) {
  const py::ssize_t L = py::ssize_t(structure.size());
  const py::ssize_t H = L ? py::ssize_t(structure.front().heads.size()) : 0;
  const size_t cells = size_t(L * H) * kTokenSlots * kTokenSlots;
  std::vector<double> scalar(cells), energy_share(cells), diag(cells), identity(cells);
  std::vector<double> total(size_t(L * H)), diagonal_energy(size_t(L * H)),
      identity_energy(size_t(L * H));
  size_t head_index = 0, cell = 0;
  for (const LayerStructure& layer : structure)
    for (const HeadStructure& head : layer.heads) {
      const BlockGrid& g = qk ? head.qk : head.pv;
      for (int a = 0; a < kTokenSlots; ++a)
        for (int b = 0; b < kTokenSlots; ++b, ++cell) {
          const BlockStats& s = g.blocks[a][b];
          scalar[cell] = s.scalar;
          energy_share[cell] = g.total_energy > 0.0 ? s.energy / g.total_energy : 0.0;
          diag[cell] = s.diag_fraction;
          identity[cell] = s.identity_fraction;
        }
      total[head_index] = g.total_energy;
      diagonal_energy[head_index] = g.diagonal_energy_fraction;
      identity_energy[head_index] = g.identity_energy_fraction;
      ++head_index;
    }
  const std::vector<py::ssize_t> grid = {L, H, kTokenSlots, kTokenSlots};
  py::dict out;
  out["scalars"] = to_numpy(std::move(scalar), grid);
  out["energy_share"] = to_numpy(std::move(energy_share), grid);
  out["diag_fraction"] = to_numpy(std::move(diag), grid);
  out["identity_fraction"] = to_numpy(std::move(identity), grid);
  out["total_energy"] = to_numpy(std::move(total), {L, H});
  out["diagonal_energy_fraction"] = to_numpy(std::move(diagonal_energy), {L, H});
  out["identity_energy_fraction"] = to_numpy(std::move(identity_energy), {L, H});
  return out;
}

py::array_t<double> coefficients_array(const RevAlgCoefficients& w) {
  std::vector<double> values;
  for (const auto& q : w)
    for (const auto& k : q)
      for (double v : k) values.push_back(v);
  return to_numpy(std::move(values), {2, 2, 2});
}

py::dict closed_form_dict(ClosedFormComparison&& c) {
  std::vector<double> qk, pv;
  for (const RevAlgHead& h : c.heads) {
    for (const auto& row : h.qk) qk.insert(qk.end(), row.begin(), row.end());
    pv.insert(pv.end(), h.pv.begin(), h.pv.end());
  }
  const auto H = py::ssize_t(c.heads.size());
  py::dict out;
  out["qk"] = to_numpy(std::move(qk), {H, kTokenSlots, kTokenSlots});
  out["pv"] = to_numpy(std::move(pv), {H, kTokenSlots});
  out["coefficients"] = coefficients_array(c.coefficients);
  out["fitted"] = coefficients_array(c.fitted);
  out["gd_eta"] = c.gd_eta;
  out["gd_eta_clipped"] = c.gd_eta_clipped;
  const auto D = py::ssize_t(c.gd_w0.dim);
  out["gd_w0"] = py::dict(py::arg("eta") = c.gd_w0.eta,
                          py::arg("w0") = to_numpy(std::move(c.gd_w0.w0), {D, D}));
  out["gd_step"] = py::dict(py::arg("eta") = c.gd_step.eta, py::arg("loss") = c.gd_step.loss,
                            py::arg("w0") = to_numpy(std::move(c.gd_step.w0), {D, D}));
  out["curves"] = curves_dict(std::move(c.curves));
  return out;
}

py::dict revalg_d_dict(RevAlgDComparison&& c) {
  std::vector<double> q, v;
  for (const RevAlgDLayer& layer : c.layers)
    for (const RevAlgDHead& head : layer) {
      for (const auto& row : head.q) q.insert(q.end(), row.begin(), row.end());
      for (const auto& row : head.v) v.insert(v.end(), row.begin(), row.end());
    }
  const auto L = py::ssize_t(c.layers.size());
  const py::ssize_t H = L ? py::ssize_t(c.layers.front().size()) : 0;
  py::dict out;
  out["q"] = to_numpy(std::move(q), {L, H, kTokenSlots, kTokenSlots});
  out["v"] = to_numpy(std::move(v), {L, H, kTokenSlots, kTokenSlots});
  out["qk_energy_share"] = c.qk_energy_share;
  out["pv_energy_share"] = c.pv_energy_share;
  out["curves"] = curves_dict(std::move(c.curves));
  return out;
}

py::dict sparsity_dict(std::vector<HeadSparsity>&& heads, double threshold) {
  std::vector<int> layer, head;
  std::vector<double> qk, pv;
  for (const HeadSparsity& h : heads) {
    layer.push_back(h.layer);
    head.push_back(h.head);
    qk.push_back(h.qk);
    pv.push_back(h.pv);
  }
  py::dict out;
  out["relative_threshold"] = threshold;
  out["layer"] = to_numpy(std::move(layer));
  out["head"] = to_numpy(std::move(head));
  out["qk"] = to_numpy(std::move(qk));
  out["pv"] = to_numpy(std::move(pv));
  return out;
}

std::vector<float> params_vector(const Model& model, const CArray<float>& params) {
  require_params(params, model.transformer.num_params());
  return std::vector<float>(params.data(), params.data() + params.size());
}

py::dict revalg(const Model& model, const CArray<float>& params) {
  const std::vector<float> p = params_vector(model, params);
  RevAlgReport report;
  std::vector<HeadSparsity> sparsity;
  const std::string revalg_d_note = revalg_d_ineligibility(model.cfg);
  RevAlgDComparison revalg_d;
  {
    py::gil_scoped_release release;
    report = analyse_revalg(model.cfg, p);
    const std::vector<double> p64(p.begin(), p.end());
    sparsity = weight_sparsity(model.transformer, p64.data(), kDefaultSparsityThreshold);
    if (revalg_d_note.empty()) revalg_d = compare_revalg_d(model.cfg, model.transformer, p);
  }
  py::dict out;
  py::list kinds;
  for (const LayerStructure& l : report.structure) kinds.append(std::string(mixer_name(l.kind)));
  out["kinds"] = kinds;
  out["qk"] = grids_dict(report.structure, true);
  out["pv"] = grids_dict(report.structure, false);
  out["closed_form"] = report.has_comparison
                           ? py::object(closed_form_dict(std::move(report.comparison)))
                           : py::object(py::none());
  out["closed_form_note"] = report.comparison_note;
  out["sparsity"] = sparsity_dict(std::move(sparsity), kDefaultSparsityThreshold);
  out["revalg_d"] = revalg_d_note.empty() ? py::object(revalg_d_dict(std::move(revalg_d)))
                                          : py::object(py::none());
  out["revalg_d_note"] = revalg_d_note;
  return out;
}

py::dict revalg_d(const Model& model, const CArray<float>& params) {
  const std::vector<float> p = params_vector(model, params);
  RevAlgDComparison c;
  {
    py::gil_scoped_release release;
    c = compare_revalg_d(model.cfg, model.transformer, p);
  }
  return revalg_d_dict(std::move(c));
}

py::dict sparsity(const Model& model, const CArray<float>& params, double threshold) {
  require_params(params, model.transformer.num_params());
  const std::vector<double> p64(params.data(), params.data() + params.size());
  std::vector<HeadSparsity> heads;
  {
    py::gil_scoped_release release;
    heads = weight_sparsity(model.transformer, p64.data(), threshold);
  }
  return sparsity_dict(std::move(heads), threshold);
}

py::dict interpolate(const std::string& run_dir, double alpha,
                     const std::vector<std::string>& overrides, bool progress) {
  InterpolationResult r;
  {
    py::gil_scoped_release release;
    r = report::interpolate_run_dir(run_dir, {alpha, overrides, progress, false});
  }
  std::vector<int64_t> steps;
  std::vector<double> model, interpolated, recorded;
  for (const InterpolationPoint& p : r.points) {
    steps.push_back(p.step);
    model.push_back(p.model);
    interpolated.push_back(p.interpolated);
    recorded.push_back(p.recorded);
  }
  py::dict out;
  out["alpha"] = r.alpha;
  out["revalg_d"] = r.revalg_d;
  out["replay_max_difference"] = r.replay_max_difference;
  out["steps"] = to_numpy(std::move(steps));
  out["model"] = to_numpy(std::move(model));
  out["interpolated"] = to_numpy(std::move(interpolated));
  out["recorded"] = to_numpy(std::move(recorded));
  return out;
}

}  // namespace

void bind_revalg(py::module_& m) {
  m.def("revalg", &revalg, py::arg("model"), py::arg("params"),
        "`mesalab revalg`: per layer and head the 4x4 block statistics of M_QK = Wq Wk^T and "
        "M_PV = Wv Wo ('qk', 'pv': arrays (L, H, 4, 4) and (L, H)); for a 1-layer LSA the "
        "RevAlg-1 'closed_form' (coefficients (2, 2, 2), GD fits, per-t 'curves'), else None "
        "with 'closed_form_note'; 'sparsity'; 'revalg_d' (None with 'revalg_d_note' if it does "
        "not apply)");
  m.def("revalg_d", &revalg_d, py::arg("model"), py::arg("params"),
        "RevAlg-d of a linear-attention model: block scalars 'q', 'v' (L, H, 4, 4), their "
        "energy shares, and the per-t 'curves' of the model and RevAlg-d on the run's test set");
  m.def("sparsity", &sparsity, py::arg("model"), py::arg("params"),
        py::arg("threshold") = kDefaultSparsityThreshold,
        "per attention head the share of entries of M_QK and M_PV above threshold x their "
        "largest: {'layer', 'head', 'qk', 'pv'} arrays");
  m.def("interpolate", &interpolate, py::arg("run_dir"), py::arg("alpha") = 0.5,
        py::arg("overrides") = std::vector<std::string>{}, py::arg("progress") = false,
        "`mesalab interpolate`: replays a finished linear-attention run and scores, at every "
        "evaluation, its weights mixed with the RevAlg-d of its final weights: {'alpha', "
        "'revalg_d', 'replay_max_difference', 'steps', 'model', 'interpolated', 'recorded'}");
}

}  // namespace mesalab::python
