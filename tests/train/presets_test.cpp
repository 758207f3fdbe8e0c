// Every JSON preset in configs/ must resolve against the schema.
#include <gtest/gtest.h>

#include <filesystem>

#include "train/run_config.hpp"

namespace mesalab {
namespace {

TEST(Presets, EveryConfigFileResolves) {
  int count = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(MESALAB_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(make_run_config(load_config_file(entry.path().string()), {}));
    ++count;
  }
  EXPECT_GE(count, 11);
}

}  // namespace
}  // namespace mesalab
