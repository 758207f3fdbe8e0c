// The JSON presets of configs/ and their embedded copies.
#include "train/presets.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "model/transformer.hpp"
#include "train/run_config.hpp"

namespace mesalab {
namespace {

// Every configs/*.json resolves, is named after its file (runs and the report are found by
// that name), builds its model, and is the preset the binary embeds, byte for byte.
TEST(Presets, EveryConfigFileResolvesUnderItsNameAndIsEmbedded) {
  std::set<std::string> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(MESALAB_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    const std::string stem = entry.path().stem().string();
    SCOPED_TRACE(entry.path().string());
    files.insert(stem);
    const RunConfig cfg = make_run_config(load_config_file(entry.path().string()), {});
    EXPECT_EQ(cfg.name, stem);
    EXPECT_GT(Transformer(cfg.model).num_params(), 0U);
    const auto embedded = std::find_if(builtin_presets().begin(), builtin_presets().end(),
                                       [&](const Preset& p) { return p.name == stem; });
    ASSERT_NE(embedded, builtin_presets().end());
    EXPECT_EQ(embedded->json, read_file(entry.path()));
    EXPECT_EQ(preset_run_config(stem, {}).resolved, cfg.resolved);
  }
  std::set<std::string> embedded_names;
  for (const Preset& p : builtin_presets()) embedded_names.insert(p.name);
  EXPECT_EQ(embedded_names, files);
  EXPECT_THROW(preset_run_config("no_such_preset", {}), Error);
}

}  // namespace
}  // namespace mesalab
