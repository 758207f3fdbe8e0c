// `mesalab train --continue`: one idempotent command per run. It starts a run that does not
// exist, resumes one that has a checkpoint of the same config (bit-identically: the result
// equals an uninterrupted run), and refuses a directory holding another config, naming the
// keys that differ.
#include <gtest/gtest.h>

#include <filesystem>
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
    const auto j = nlohmann::json::parse(m.substr(m.rfind("{")), nullptr, false);
    return j["test_loss"].get<double>();
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
