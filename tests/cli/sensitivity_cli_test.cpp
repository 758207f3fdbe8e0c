// End-to-end test of `mesalab sensitivity` on a tiny raw-token run trained with
// train.sensitivity_every: the tables of the initialisation and every step checkpoint, the
// records of training read back, the files written next to the run, and one-line errors
// (exit 2) for a directory that is not a run and a corrupt record, exit 2 for a bad --batch.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Result;

class SensitivityCliTest : public testing::CliFixture {
 protected:
  SensitivityCliTest() : CliFixture("mesalab_sensitivity_cli_") {}
};

void expect_bad_input(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << testing::describe(r);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(testing::nonempty_lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST_F(SensitivityCliTest, TablesOfEveryCheckpointNextToTheTrainingRecords) {
  Result r = mesalab(
      "train --set train.steps=20 --set train.batch_size=8 --set data.seq_len=12 "
      "--set data.dim=3 --set model.embed_dim=8 --set model.heads=2 --set model.key_size=4 "
      "--set data.tokens=raw --set model.layer=softmax --set model.positional_codes_qk=true "
      "--set train.test_batches=1 --set train.test_batch_size=8 --set train.checkpoint_every=10 "
      "--set train.sensitivity_every=10 --set train.runs_dir=runs --set name=raw --quiet");
  ASSERT_EQ(r.code, 0) << testing::describe(r);
  ASSERT_TRUE(fs::exists(root_ / "runs/raw/sensitivity.jsonl"));

  r = mesalab("sensitivity runs/raw --every-checkpoint --batch 16 --json", "MESALAB_GNUPLOT=");
  ASSERT_EQ(r.code, 0) << testing::describe(r);
  const json j = json::parse(r.out);
  EXPECT_EQ(j["targets"], json({1, 5, 11}));
  ASSERT_EQ(j["computed"].size(), 3u);  // init, step_10, step_20
  EXPECT_EQ(j["computed"][0]["step"], 0);
  EXPECT_EQ(j["computed"][2]["step"], 20);
  EXPECT_EQ(j["computed"][2]["batch"], 16);
  EXPECT_EQ(j["computed"][2]["sensitivity"][2].size(), 12u);            // positions 0..T-1
  EXPECT_TRUE(j["computed"][0]["previous_to_old_ratio"][0].is_null());  // k = 1 < 5
  ASSERT_EQ(j["recorded"].size(), 3u);  // steps 0, 10, 20 during training (64 sequences)
  EXPECT_EQ(j["recorded"][1]["batch"], 64);
  EXPECT_TRUE(fs::exists(root_ / "runs/raw/sensitivity.json"));
  EXPECT_TRUE(fs::exists(root_ / "runs/raw/figures/sensitivity.csv"));
  EXPECT_TRUE(fs::exists(root_ / "runs/raw/figures/sensitivity_training.gp"));

  r = mesalab("sensitivity runs/raw", "MESALAB_GNUPLOT=");  // the latest checkpoint, as text
  ASSERT_EQ(r.code, 0) << testing::describe(r);
  EXPECT_TRUE(testing::contains(r.out, "k = 11")) << r.out;
  EXPECT_TRUE(testing::contains(r.out, "3 records from training")) << r.out;

  expect_bad_input(mesalab("sensitivity runs/none"), "not a run directory");
  r = mesalab("sensitivity runs/raw --batch 0");  // CLI11's own message and usage hint
  EXPECT_EQ(r.code, 2) << testing::describe(r);
  EXPECT_TRUE(testing::contains(r.err, "--batch")) << r.err;
  std::ofstream(root_ / "runs/raw/sensitivity.jsonl", std::ios::app) << "{\"step\": 30}\n";
  expect_bad_input(mesalab("sensitivity runs/raw"), "sensitivity.jsonl:4");
}

}  // namespace
}  // namespace mesalab
