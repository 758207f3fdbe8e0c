// mesalab.Model (a transformer built from a run config), the config helpers and the per-t
// evaluation.
#include <pybind11/stl.h>

#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "convert.hpp"
#include "model/batch_runner.hpp"
#include "train/evaluation.hpp"

namespace mesalab::python {

namespace {

py::dict tensor_shapes(const Model& model) {
  py::dict out;
  for (const ParamSpec& spec : model.transformer.layout().specs())
    out[py::str(spec.name)] = py::tuple(py::cast(spec.shape));
  return out;
}

py::array_t<float> init_params(const Model& model, std::optional<uint64_t> seed) {
  std::vector<float> params(model.transformer.num_params());
  model.transformer.init_params(params.data(), seed.value_or(model.cfg.train.seed));
  return to_numpy(std::move(params));
}

// Views into params, one per tensor (no copy; they keep params alive).
py::dict split_params(const Model& model, const CArray<float>& params) {
  require_params(params, model.transformer.num_params());
  py::dict out;
  for (const ParamSpec& spec : model.transformer.layout().specs()) {
    std::vector<py::ssize_t> shape(spec.shape.begin(), spec.shape.end());
    out[py::str(spec.name)] = py::array_t<float>(shape, params.data() + spec.offset, params);
  }
  return out;
}

// The tokens of an evaluation batch (copied into the batch's buffers, which the runner reads).
TokenBatch batch_from_arrays(const Model& model, const CArray<float>& tokens,
                             const CArray<float>& labels) {
  require_ndim(tokens, 3, "tokens");
  require_ndim(labels, 3, "labels");
  const int width = model.transformer.config().token_dim();
  const int dim = observed_dim(model.cfg.data);
  if (tokens.shape(2) != width || labels.shape(0) != tokens.shape(0) ||
      labels.shape(1) != tokens.shape(1) || labels.shape(2) != dim)
    fail("tokens must be (B, T, {}) and labels (B, T, {}) for this model, got {} and {}", width,
         dim, shape_string(tokens), shape_string(labels));
  TokenBatch b;
  b.batch = int(tokens.shape(0));
  b.seq_len = int(tokens.shape(1));
  b.dim = dim;
  b.width = width;
  b.tokens.assign(tokens.data(), tokens.data() + tokens.size());
  b.labels.assign(labels.data(), labels.data() + labels.size());
  return b;
}

py::array_t<double> evaluate(const Model& model, const CArray<float>& params,
                             std::optional<CArray<float>> tokens,
                             std::optional<CArray<float>> labels) {
  require_params(params, model.transformer.num_params());
  if (tokens.has_value() != labels.has_value())
    fail("evaluate: give both tokens and labels, or neither");
  std::vector<TokenBatch> batches;
  if (tokens) batches.push_back(batch_from_arrays(model, *tokens, *labels));
  const float* p = params.data();
  std::vector<double> curve;
  {
    py::gil_scoped_release release;
    const TrainSettings& train = model.cfg.train;
    if (batches.empty())
      batches = make_test_set(model.cfg, train.seed, train.test_batches, train.test_batch_size);
    BatchRunner<float> runner(model.transformer, batches.front().batch, batches.front().seq_len,
                              /*forward_only=*/true);
    curve = per_step_loss(runner, p, batches);
  }
  return to_numpy(std::move(curve));
}

const char* type_name(ConfigType type) {
  switch (type) {
    case ConfigType::Int:
      return "int";
    case ConfigType::Float:
      return "float";
    case ConfigType::Bool:
      return "bool";
    case ConfigType::String:
      return "str";
    case ConfigType::StringList:
      return "list of str";
    case ConfigType::StringOrStringList:
      return "str or list of str";
  }
  return "?";
}

py::list config_schema() {
  py::list out;
  for (const ConfigKey& k : run_config_schema().keys()) {
    py::dict key;
    key["key"] = k.key;
    key["type"] = type_name(k.type);
    key["default"] = json_to_python(k.default_value);
    key["help"] = k.help;
    key["min"] = k.min;
    key["max"] = k.max;
    key["choices"] = py::cast(k.choices);
    out.append(key);
  }
  return out;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<Model>(m, "Model",
                    "A transformer built from a run config (dict, nested or dotted keys as in "
                    "the JSON configs). Parameters live outside it, in one float32 array.")
      .def(py::init(
               [](py::object config) { return std::make_unique<Model>(run_config_from(config)); }),
           py::arg("config") = py::none())
      .def_property_readonly(
          "config", [](const Model& s) { return json_to_python(s.cfg.resolved); },
          "the resolved run config (every key, defaults filled in), as `mesalab config` prints")
      .def_property_readonly("name", [](const Model& s) { return s.cfg.name; })
      .def_property_readonly("num_params",
                             [](const Model& s) { return s.transformer.num_params(); })
      .def_property_readonly("tensors", &tensor_shapes,
                             "{name: shape} in the order of the parameter buffer (the "
                             "checkpoints' tensor names)")
      .def("init_params", &init_params, py::arg("seed") = py::none(),
           "fresh parameters as training starts them (seed: train.seed by default)")
      .def("split", &split_params, py::arg("params"),
           "{name: view} of the parameter buffer, no copy: writing a view writes params")
      .def("evaluate", &evaluate, py::arg("params"), py::arg("tokens") = py::none(),
           py::arg("labels") = py::none(),
           "per-time-step test loss (t = 1..T) as `mesalab eval`: on the run's fixed test set, "
           "or on the given tokens (B, T, width) and labels (B, T, D)")
      .def("__repr__", [](const Model& s) {
        return fmt::format("mesalab.Model('{}', {} layers, {} parameters)", s.cfg.name,
                           s.transformer.config().layers(), s.transformer.num_params());
      });
  m.def(
      "resolve_config",
      [](py::object config) { return json_to_python(run_config_from(config).resolved); },
      py::arg("config") = py::none(),
      "the resolved, validated config (`mesalab config`): every key, defaults filled in");
  m.def("config_schema", &config_schema,
        "every config key with its default, help, range and allowed values (`mesalab config "
        "--list`)");
}

}  // namespace mesalab::python
