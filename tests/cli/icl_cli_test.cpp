// End-to-end tests of `mesalab icl` and `mesalab prompt-tune` on a tiny raw-token run: the
// JSON results, the files written next to the run, the prompt that icl picks up, and the
// one-line errors (exit 2) for a constructed-token run, a prefix without a tuned EOS and a
// prefix longer than the context.
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

class IclCliTest : public testing::CliFixture {
 protected:
  IclCliTest() : CliFixture("mesalab_icl_cli_") {}

  // embed_dim 12: what constructed tokens of dim 3 need, and any width for raw ones.
  void train_tiny(const std::string& name, const std::string& tokens) const {
    const Result r = mesalab(
        "train --set train.steps=10 --set train.batch_size=8 --set data.seq_len=12 "
        "--set data.dim=3 --set model.embed_dim=12 --set model.heads=2 --set model.key_size=4 "
        "--set train.test_batches=1 --set train.test_batch_size=8 --set train.runs_dir=runs "
        "--set data.tokens=" +
        tokens + " --set name=" + name + " --quiet --json");
    ASSERT_EQ(r.code, 0) << r.out << r.err;
  }
};

void expect_bad_input(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST_F(IclCliTest, CurvesThenTunedEosThenPrefix) {
  train_tiny("raw", "raw");
  Result r = mesalab("icl runs/raw --batch 16 --seeds 1,2 --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j["variants"].size(), 3u);  // base and the two least-squares baselines
  EXPECT_EQ(j["variants"][0]["name"], "base");
  EXPECT_EQ(j["variants"][0]["curve"].size(), 6u);  // T/2 examples
  EXPECT_EQ(j["variants"][0]["mean_loss"].size(), 2u);
  EXPECT_TRUE(fs::exists(root_ / "runs/raw/icl.json"));
  EXPECT_TRUE(fs::exists(root_ / "runs/raw/figures/icl.csv"));

  r = mesalab("prompt-tune runs/raw --what prefix --steps 3 --quiet");
  expect_bad_input(r, "no tuned EOS token");

  r = mesalab("prompt-tune runs/raw --what eos --steps 5 --batch 8 --test-batch 8 --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["train_loss"].size(), 5u);
  EXPECT_TRUE(fs::exists(root_ / "runs/raw/prompt.safetensors"));

  r = mesalab("prompt-tune runs/raw --what prefix --prefix-len 30 --steps 3 --quiet");
  expect_bad_input(r, "prefix of 30 tokens");
  r = mesalab(
      "prompt-tune runs/raw --what prefix --prefix-len 2 --steps 3 --batch 8 --test-batch 8 "
      "--json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  r = mesalab("icl runs/raw --batch 16 --seeds 1 --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  j = json::parse(r.out);
  ASSERT_EQ(j["variants"].size(), 5u);
  EXPECT_EQ(j["variants"][3]["name"], "+eos");
  EXPECT_EQ(j["variants"][3]["curve"].size(), 4u);  // T/3 examples
  EXPECT_EQ(j["variants"][4]["name"], "+prefix+eos");
  EXPECT_EQ(j["variants"][4]["curve"].size(), 3u);  // truncated to the plain length
}

TEST_F(IclCliTest, AConstructedTokenRunIsRefused) {
  train_tiny("constructed", "constructed");
  expect_bad_input(mesalab("icl runs/constructed"), "raw-token model");
  expect_bad_input(mesalab("prompt-tune runs/constructed --what eos"), "raw-token model");
}

}  // namespace
}  // namespace mesalab
