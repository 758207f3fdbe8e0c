#pragma once
// Schema-validated configuration. A config is a nested JSON object; every leaf has a
// dotted key ("model.layers") declared in a ConfigSchema with its type, default, range and
// help text. Unknown keys, wrong types and out-of-range values are errors naming the key.
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mesalab {

enum class ConfigType { Int, Float, Bool, String, StringList, StringOrStringList };

struct ConfigKey {
  std::string key;
  ConfigType type;
  nlohmann::json default_value;
  std::string help;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // allowed strings (each element for lists)
};

class ConfigSchema {
 public:
  explicit ConfigSchema(std::vector<ConfigKey> keys) : keys_(std::move(keys)) {}
  const std::vector<ConfigKey>& keys() const { return keys_; }

  // defaults <- file (nested JSON object) <- overrides ("a.b=value", value parsed as JSON
  // when it is valid JSON, else taken as a string). Returns the validated nested config.
  nlohmann::json resolve(const nlohmann::json& file,
                         const std::vector<std::string>& overrides) const;

  // Checks a nested config: every leaf known, typed and in range.
  void validate(const nlohmann::json& nested) const;

  // One line per key: "key (type, default ...): help".
  std::string describe() const;

 private:
  const ConfigKey* find(const std::string& key) const;
  void check_value(const ConfigKey& k, const nlohmann::json& value) const;
  std::vector<ConfigKey> keys_;
};

// Flattens {"a": {"b": 1}} to {"a.b": 1}.
nlohmann::json flatten_config(const nlohmann::json& nested);

// Parses a config file; errors name the file and the JSON parse position.
nlohmann::json load_config_file(const std::string& path);

}  // namespace mesalab
