#include "train/presets.hpp"

#include <fmt/ranges.h>

#include "core/error.hpp"

namespace mesalab {

RunConfig preset_run_config(const std::string& name, const std::vector<std::string>& overrides) {
  std::vector<std::string> names;
  for (const Preset& p : builtin_presets()) {
    if (p.name != name) {
      names.push_back(p.name);
      continue;
    }
    const nlohmann::json file = nlohmann::json::parse(p.json, nullptr, false);
    if (file.is_discarded()) fail("preset '{}' is not valid JSON", name);
    return make_run_config(file, overrides);
  }
  fail("unknown preset '{}' (valid: {})", name, fmt::join(names, ", "));
}

}  // namespace mesalab
