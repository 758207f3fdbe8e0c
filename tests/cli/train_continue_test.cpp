// `mesalab train --continue`: one idempotent command per run. It starts a run that does not
// exist, resumes one that has a checkpoint of the same config (bit-identically: the result
// equals an uninterrupted run), and refuses a directory holding another config, naming the
// keys that differ.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::describe;
using testing::read_all;
using testing::Result;

class TrainContinueTest : public testing::CliFixture {
 protected:
  TrainContinueTest() : CliFixture("mesalab_continue_") {}
  Result train(const std::string& name, const std::string& extra) const {
    return mesalab("train --set name=" + name + " --set train.runs_dir='" + runs_.string() +
                   "' --set train.batch_size=8 --set data.seq_len=8 --set train.test_batches=1 "
                   "--set train.test_batch_size=8 --set train.checkpoint_every=10 --quiet --json " +
                   extra);
  }
};

TEST_F(TrainContinueTest, StartsThenResumesToTheUninterruptedResult) {
  ASSERT_EQ(train("whole", "--set train.steps=40").code, 0);
  Result r = train("split", "--set train.steps=20 --continue");
  ASSERT_EQ(r.code, 0) << describe(r);
  r = train("split", "--set train.steps=40 --continue");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_EQ(read_all(runs_ / "split" / "ckpt" / "step_40.safetensors").size(),
            read_all(runs_ / "whole" / "ckpt" / "step_40.safetensors").size());
  const std::string whole = read_all(runs_ / "whole" / "metrics.jsonl"),
                    split = read_all(runs_ / "split" / "metrics.jsonl");
  // identical losses (elapsed_s differs): compare the test loss of the last line
  auto last_test_loss = [](const std::string& m) {
    const std::string last_line = m.substr(m.rfind('\n', m.size() - 2) + 1);
    return nlohmann::json::parse(last_line)["test_loss"].get<double>();
  };
  EXPECT_EQ(last_test_loss(split), last_test_loss(whole));
  // continuing a finished run is harmless
  r = train("split", "--set train.steps=40 --continue");
  EXPECT_EQ(r.code, 0) << describe(r);
}

TEST_F(TrainContinueTest, RefusesAnotherConfigNamingTheKey) {
  ASSERT_EQ(train("run", "--set train.steps=10").code, 0);
  const Result r = train("run", "--set train.steps=10 --set optim.lr=0.001 --continue");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "optim.lr") && contains(r.err, "--force")) << r.err;
}

TEST_F(TrainContinueTest, ExcludesResumeAndForce) {
  EXPECT_EQ(train("x", "--continue --force").code, 2);
}

}  // namespace
}  // namespace mesalab

namespace mesalab {
namespace {

// An edited config.json must not let --resume (or eval) silently continue under other
// settings; --allow-config-change is the explicit, logged way out.
TEST_F(TrainContinueTest, EditedConfigIsRefusedUnlessExplicitlyAllowed) {
  ASSERT_EQ(train("run", "--set train.steps=10").code, 0);
  const fs::path run = runs_ / "run", config = run / "config.json";
  nlohmann::json c = nlohmann::json::parse(read_all(config));
  c["optim"]["lr"] = 0.001;
  std::ofstream(config) << c.dump(2);
  Result r = mesalab("train --resume '" + run.string() + "' --set train.steps=20 --quiet");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "optim.lr") && contains(r.err, "--allow-config-change")) << r.err;
  r = mesalab("eval '" + run.string() + "'");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "optim.lr")) << r.err;

  r = mesalab("train --resume '" + run.string() +
              "' --set train.steps=20 --allow-config-change --quiet");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "optim.lr")) << "the change is reported: " << r.err;
  EXPECT_TRUE(contains(read_all(run / "config_changes.log"),
                       "step 10: resumed under a changed "
                       "config: optim.lr"))
      << read_all(run / "config_changes.log");
  // The checkpoints written since carry the new config: the run is consistent again.
  r = mesalab("eval '" + run.string() + "'");
  EXPECT_EQ(r.code, 0) << describe(r);
  r = mesalab("train --allow-config-change --set train.steps=5");
  EXPECT_EQ(r.code, 2) << "only with --resume: " << describe(r);
}

}  // namespace
}  // namespace mesalab
