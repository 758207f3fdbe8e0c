#include "io/config.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace mesalab {

using nlohmann::json;

// Configs nest a few levels ({"model": {"layer": ["lsa"]}}); anything much deeper is
// hostile, and nlohmann's copy, dump and our flattening recurse once per level, so a
// config nested 100k levels deep would overflow the stack. Checked before any of those.
constexpr int kMaxConfigDepth = 32;

// Whether `j` nests arrays/objects more than `limit` levels; recurses at most `limit` deep.
static bool nests_deeper_than(const json& j, int limit) {
  if (!j.is_structured()) return false;
  if (limit == 0) return true;
  for (const auto& element : j)
    if (nests_deeper_than(element, limit - 1)) return true;
  return false;
}

static void flatten_into(const json& j, const std::string& prefix, json& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items())
      flatten_into(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j;
  }
}

json flatten_config(const json& nested) {
  if (!nested.is_object()) fail("a config must be a JSON object");
  if (nests_deeper_than(nested, kMaxConfigDepth))
    fail("a config must not nest deeper than {} levels", kMaxConfigDepth);
  json out = json::object();
  for (const auto& [k, v] : nested.items()) flatten_into(v, k, out);
  return out;
}

json load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot open config file '{}'", path);
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    fail("config file '{}' is not valid JSON: {}", path, e.what());
  }
}

static bool is_valid_utf8(const std::string& text) {
  try {
    (void)json(text).dump();  // nlohmann validates UTF-8 when it serializes a string
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

static std::string type_name(ConfigType t) {
  switch (t) {
    case ConfigType::Int:
      return "integer";
    case ConfigType::Float:
      return "number";
    case ConfigType::Bool:
      return "boolean";
    case ConfigType::String:
      return "string";
    case ConfigType::StringList:
      return "list of strings";
    case ConfigType::StringOrStringList:
      return "string or list of strings";
  }
  return "?";
}

const ConfigKey* ConfigSchema::find(const std::string& key) const {
  for (const auto& k : keys_)
    if (k.key == key) return &k;
  return nullptr;
}

void ConfigSchema::check_value(const ConfigKey& k, const json& value) const {
  auto check_choice = [&](const json& s) {
    if (!s.is_string())
      fail("config key '{}' must be a {} (got {})", k.key, type_name(k.type), value.dump());
    if (k.choices.empty()) return;
    for (const auto& c : k.choices)
      if (c == s.get<std::string>()) return;
    std::string allowed;
    for (const auto& c : k.choices) allowed += (allowed.empty() ? "" : ", ") + c;
    fail("config key '{}' has value {} (allowed: {})", k.key, s.dump(), allowed);
  };
  switch (k.type) {
    case ConfigType::Int:
    case ConfigType::Float: {
      const bool ok = k.type == ConfigType::Int ? value.is_number_integer()
                                                : (value.is_number() && !value.is_boolean());
      if (!ok)
        fail("config key '{}' must be an {} (got {})", k.key, type_name(k.type), value.dump());
      const double x = value.get<double>();
      if (!std::isfinite(x) || x < k.min || x > k.max)
        fail("config key '{}' = {} is out of range [{}, {}]", k.key, value.dump(), k.min, k.max);
      return;
    }
    case ConfigType::Bool:
      if (!value.is_boolean())
        fail("config key '{}' must be a boolean (got {})", k.key, value.dump());
      return;
    case ConfigType::String:
      return check_choice(value);
    case ConfigType::StringList:
    case ConfigType::StringOrStringList:
      if (value.is_array() && !value.empty()) {
        for (const auto& e : value) check_choice(e);
        return;
      }
      if (k.type == ConfigType::StringOrStringList && value.is_string()) return check_choice(value);
      fail("config key '{}' must be a {} (got {})", k.key, type_name(k.type), value.dump());
  }
}

void ConfigSchema::validate(const json& nested) const {
  const json flat = flatten_config(nested);
  for (const auto& [key, value] : flat.items()) {
    const ConfigKey* k = find(key);
    if (!k) fail("unknown config key '{}' (see `mesalab config --list` for the known keys)", key);
    check_value(*k, value);
  }
}

json ConfigSchema::resolve(const json& file, const std::vector<std::string>& overrides) const {
  json flat = json::object();
  for (const auto& k : keys_) flat[k.key] = k.default_value;
  if (!file.is_null()) {
    if (!file.is_object()) fail("a config must be a JSON object");
    const json file_flat = flatten_config(file);
    for (const auto& [key, value] : file_flat.items()) {
      if (!find(key))
        fail("unknown config key '{}' (see `mesalab config --list` for the known keys)", key);
      flat[key] = value;
    }
  }
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) fail("--set expects key=value (got '{}')", o);
    const std::string key = o.substr(0, eq), text = o.substr(eq + 1);
    if (!find(key)) fail("unknown config key '{}' in --set (see `mesalab config --list`)", key);
    // Values are JSON when they parse as JSON; a string key keeps the raw text, so that
    // --set name=2024 names a run "2024".
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (nests_deeper_than(value, kMaxConfigDepth))
      fail("--set {}: the value nests deeper than {} levels", key, kMaxConfigDepth);
    const ConfigType type = find(key)->type;
    const bool wants_string =
        type == ConfigType::String || (type == ConfigType::StringOrStringList && !value.is_array());
    if (value.is_discarded() || (wants_string && !value.is_string())) {
      // A raw string must be valid UTF-8 (JSON text already is): the resolved config is
      // written out as JSON (config.json, checkpoint metadata), and error messages dump it.
      if (!is_valid_utf8(text)) fail("--set {}: the value is not valid UTF-8 text", key);
      value = text;
    }
    flat[key] = value;
  }
  json nested = json::object();
  for (const auto& [key, value] : flat.items()) {
    json* node = &nested;
    size_t start = 0;
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', start)) {
      node = &(*node)[key.substr(start, dot - start)];
      start = dot + 1;
    }
    (*node)[key.substr(start)] = value;
  }
  validate(nested);
  return nested;
}

std::string ConfigSchema::describe() const {
  std::ostringstream out;
  for (const auto& k : keys_) {
    out << k.key << " (" << type_name(k.type) << ", default " << k.default_value.dump();
    if (std::isfinite(k.min) || std::isfinite(k.max))
      out << ", range [" << k.min << ", " << k.max << "]";
    if (!k.choices.empty()) {
      out << ", one of";
      for (const auto& c : k.choices) out << " " << c;
    }
    out << "): " << k.help << "\n";
  }
  return out.str();
}

}  // namespace mesalab
