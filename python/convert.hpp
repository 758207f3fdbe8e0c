#pragma once
// Python values <-> mesalab's JSON configs and run configs.
#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/rng.hpp"
#include "model/transformer.hpp"
#include "train/run_config.hpp"

namespace mesalab::python {

namespace py = pybind11;

// dict -> object, list/tuple -> array, bool, int (and numpy integers), float (and numpy
// floats), str, None -> null. Anything else is a ValueError naming where it sits.
nlohmann::json json_from_python(py::handle value, const std::string& where = "config");
py::object json_to_python(const nlohmann::json& value);

// A model built from a run config: the Python class mesalab.Model. It keeps the whole run
// config (data, tokens and train settings too), which the test set and analyses need.
struct Model {
  explicit Model(RunConfig c) : cfg(std::move(c)), transformer(cfg.model) {}
  RunConfig cfg;
  Transformer transformer;
};

// The run config of `config`: a dict with the keys of the JSON configs, nested ({"model":
// {"layers": 1}}) or dotted ({"model.layers": 1}) or both; None (the defaults); or a
// mesalab.Model (its config). Validated by mesalab's schema: an unknown key, a wrong type or
// an out-of-range value is a ValueError naming the key.
RunConfig run_config_from(py::handle config);

// "train", "test", "tuning", "probe": the stream a batch is drawn from (as in the CLI: the
// training batches, the fixed test set, GD-1's tuning sequences, the probe batches).
RngPurpose parse_purpose(const std::string& name);

}  // namespace mesalab::python
