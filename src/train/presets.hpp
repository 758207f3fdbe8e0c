#pragma once
// The JSON presets of configs/ (one per paper experiment), compiled into the binary so that
// `mesalab reproduce` needs no source tree. The build embeds every configs/*.json.
#include <string>
#include <vector>

#include "train/run_config.hpp"

namespace mesalab {

struct Preset {
  std::string name;  // file name without .json, e.g. "lsa_1layer"
  std::string json;  // the file's content
};

const std::vector<Preset>& builtin_presets();

// The preset's config with `overrides` ("key=value") on top; an unknown name is an error
// listing the valid ones.
RunConfig preset_run_config(const std::string& name, const std::vector<std::string>& overrides);

}  // namespace mesalab
