// End-to-end test of `mesalab linearize` on a tiny softmax run: the JSON result, the files
// written next to the run, --layers, and the one-line errors (exit 2) for a run without
// softmax layers and a layer out of range.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Result;

class LinearizeCliTest : public testing::CliFixture {
 protected:
  LinearizeCliTest() : CliFixture("mesalab_linearize_cli_") {}

  void train_tiny(const std::string& name, const std::string& layer) const {
    const Result r = mesalab(
        "train --set train.steps=10 --set train.batch_size=8 --set data.seq_len=10 "
        "--set data.dim=3 --set model.embed_dim=12 --set model.heads=2 --set model.key_size=4 "
        "--set model.layers=2 --set model.layer=" +
        layer +
        " --set train.test_batches=1 --set train.test_batch_size=8 --set train.runs_dir=runs "
        "--set name=" +
        name + " --quiet --json");
    ASSERT_EQ(r.code, 0) << testing::describe(r);
  }
};

void expect_bad_input(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << testing::describe(r);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(testing::nonempty_lines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(testing::contains(r.err, needle)) << r.err;
}

TEST_F(LinearizeCliTest, FitsEverySoftmaxLayerAndWritesTheResult) {
  train_tiny("sm", "softmax");
  Result r = mesalab("linearize runs/sm --steps 20 --batch 16 --json");
  ASSERT_EQ(r.code, 0) << testing::describe(r);
  const json j = json::parse(r.out);
  ASSERT_EQ(j["layers"].size(), 2u);
  for (int l = 0; l < 2; ++l) {
    EXPECT_EQ(j["layers"][l]["layer"], l);
    EXPECT_EQ(j["layers"][l]["kind"], "softmax");
    EXPECT_GT(j["layers"][l]["ratio"].get<double>(), 0.0);
  }
  EXPECT_EQ(j["settings"]["steps"], 20);
  EXPECT_EQ(j["step"], 10);
  EXPECT_TRUE(fs::exists(root_ / "runs/sm/linearization.json"));
  EXPECT_TRUE(fs::exists(root_ / "runs/sm/figures/linearization.csv"));
  EXPECT_TRUE(fs::exists(root_ / "runs/sm/figures/linearization.gp"));

  r = mesalab("linearize runs/sm --steps 5 --layers 1 --quiet");
  ASSERT_EQ(r.code, 0) << testing::describe(r);
  EXPECT_TRUE(testing::contains(r.out, "median ratio")) << r.out;
  expect_bad_input(mesalab("linearize runs/sm --steps 5 --layers 2 --quiet"), "out of range");
}

TEST_F(LinearizeCliTest, ARunWithoutSoftmaxLayersIsRefused) {
  train_tiny("lsa", "lsa");
  expect_bad_input(mesalab("linearize runs/lsa --steps 5"), "no softmax layer");
}

}  // namespace
}  // namespace mesalab
