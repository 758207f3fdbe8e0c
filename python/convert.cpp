#include "convert.hpp"

#include <fmt/format.h>
#include <pybind11/numpy.h>

#include "core/error.hpp"

namespace mesalab::python {

using nlohmann::json;

json json_from_python(py::handle value, const std::string& where) {
  if (value.is_none()) return nullptr;
  // bool before int: Python's bool is an int.
  if (py::isinstance<py::bool_>(value) || py::isinstance(value, py::dtype::of<bool>().attr("type")))
    return value.cast<bool>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::dict>(value)) {
    json out = json::object();
    for (const auto& [key, item] : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(key))
        fail("{}: keys must be strings (got {})", where, py::repr(key).cast<std::string>());
      const std::string name = key.cast<std::string>();
      out[name] = json_from_python(item, where + "." + name);
    }
    return out;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    json out = json::array();
    size_t i = 0;
    for (py::handle item : value)
      out.push_back(json_from_python(item, fmt::format("{}[{}]", where, i++)));
    return out;
  }
  // Integers, numpy's included, have __index__; floats (and numpy floats) __float__.
  if (py::hasattr(value, "__index__")) return value.attr("__index__")().cast<int64_t>();
  if (py::isinstance<py::float_>(value) || py::hasattr(value, "__float__"))
    return value.cast<double>();
  fail("{}: cannot use a value of type {} in a config", where,
       py::str(value.get_type().attr("__name__")).cast<std::string>());
}

py::object json_to_python(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return py::none();
    case json::value_t::boolean:
      return py::bool_(value.get<bool>());
    case json::value_t::number_integer:
      return py::int_(value.get<int64_t>());
    case json::value_t::number_unsigned:
      return py::int_(value.get<uint64_t>());
    case json::value_t::number_float:
      return py::float_(value.get<double>());
    case json::value_t::string:
      return py::str(value.get<std::string>());
    case json::value_t::array: {
      py::list out;
      for (const json& item : value) out.append(json_to_python(item));
      return out;
    }
    case json::value_t::object: {
      py::dict out;
      for (const auto& [key, item] : value.items()) out[py::str(key)] = json_to_python(item);
      return out;
    }
    default:
      fail("internal: a JSON value of type {} has no Python form", value.type_name());
  }
}

namespace {

// {"model.layers": 1} -> {"model": {"layers": 1}}, merged with the nested keys, so that a
// dotted key reaches the schema under its own name (and its errors name it).
json nest_dotted_keys(const json& flat) {
  json nested = json::object();
  for (const auto& [key, value] : flat.items()) {
    json* node = &nested;
    size_t start = 0;
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', start)) {
      json& child = (*node)[key.substr(start, dot - start)];
      if (child.is_null()) child = json::object();
      if (!child.is_object()) fail("config key '{}' clashes with a value set above it", key);
      node = &child;
      start = dot + 1;
    }
    json& leaf = (*node)[key.substr(start)];
    if (leaf.is_object() && value.is_object())
      leaf.update(value, /*merge_objects=*/true);
    else if (!leaf.is_null())
      fail("config key '{}' is given twice (nested and dotted)", key);
    else
      leaf = value;
  }
  return nested;
}

}  // namespace

RunConfig run_config_from(py::handle config) {
  if (config.is_none()) return make_run_config(json(), {});
  if (py::isinstance<Model>(config)) return config.cast<const Model&>().cfg;
  if (!py::isinstance<py::dict>(config))
    throw py::type_error("config must be a dict, None or a mesalab.Model, not " +
                         py::str(config.get_type().attr("__name__")).cast<std::string>());
  return make_run_config(nest_dotted_keys(json_from_python(config)), {});
}

RngPurpose parse_purpose(const std::string& name) {
  if (name == "train") return RngPurpose::TrainData;
  if (name == "test") return RngPurpose::TestData;
  if (name == "tuning") return RngPurpose::Tuning;
  if (name == "probe") return RngPurpose::Probe;
  fail("unknown purpose '{}' (allowed: train, test, tuning, probe)", name);
}

}  // namespace mesalab::python
