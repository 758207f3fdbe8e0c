// End-to-end tests of `mesalab reproduce` at the quick scale in a temporary directory: one
// experiment from training to report; a rerun (and a rerun after a kill) trains nothing that
// had finished; bad input (unknown experiment, unwritable --out) is one line and exit 2; a
// corrupt run fails its experiment only; --plan and --slurm hand out the same commands.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::contains;
using testing::describe;
using testing::read_all;
using testing::Result;

class ReproduceCliTest : public testing::CliFixture {
 protected:
  ReproduceCliTest() : CliFixture("mesalab_reproduce_") {}
  fs::path out() const { return root_ / "out"; }
  Result reproduce(const std::string& args) const {
    return mesalab("reproduce --quick --out '" + out().string() + "' " + args);
  }
  json result(const std::string& experiment) const {
    return json::parse(read_all(out() / "experiments" / experiment / "result.json"), nullptr,
                       false);
  }
};

TEST_F(ReproduceCliTest, OneExperimentFromTrainingToReportThenNothingToRetrain) {
  const Result r = reproduce("--only one_gd_step");
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = result("one_gd_step");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(j["verdict"] == "PASS" || j["verdict"] == "DIFFERS") << j.dump(2);
  EXPECT_TRUE(contains(r.out, "one_gd_step")) << r.out;
  const std::string md = read_all(out() / "report.md"), html = read_all(out() / "report.html");
  EXPECT_TRUE(contains(md, "## one_gd_step") && contains(md, "--continue")) << md;
  EXPECT_TRUE(contains(html, "<svg")) << "figures inline";
  EXPECT_TRUE(
      fs::exists(out() / "experiments" / "one_gd_step" / "one_gd_step_curves_lsa_1layer.svg"));
  const fs::path metrics = out() / "runs" / "lsa_1layer_s1" / "metrics.jsonl";
  const std::string before = read_all(metrics),
                    log = read_all(out() / "logs" / "lsa_1layer_s1.log");
  ASSERT_FALSE(before.empty());

  const Result again = reproduce("--only one_gd_step");
  ASSERT_EQ(again.code, 0) << describe(again);
  EXPECT_EQ(read_all(metrics), before) << "a finished run is reused, not retrained";
  EXPECT_EQ(read_all(out() / "logs" / "lsa_1layer_s1.log"), log);
  EXPECT_FALSE(contains(again.err, "started lsa_1layer_s1")) << again.err;
  EXPECT_EQ(result("one_gd_step")["verdict"], j["verdict"]) << "same runs, same verdict";

  const Result forced = reproduce("--only one_gd_step --force");
  ASSERT_EQ(forced.code, 0) << describe(forced);
  EXPECT_TRUE(contains(forced.err, "started lsa_1layer_s1")) << forced.err;
  const std::string after = read_all(metrics);
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'),
            std::count(before.begin(), before.end(), '\n'))
      << "retrained from scratch: one metrics line per evaluation, not appended";
  EXPECT_TRUE(contains(after, "\"step\":200"));
}

TEST_F(ReproduceCliTest, KilledReproduceContinuesWithoutRetrainingFinishedRuns) {
  // Two runs one after the other; kill the whole process group once the first has finished.
  const fs::path first = out() / "runs" / "lsa_1layer_s1" / "metrics.jsonl";
  const std::string script = "setsid " + std::string(MESALAB_BINARY) +
                             " reproduce --quick --only single_layer --out '" + out().string() +
                             "' --jobs 1 >/dev/null 2>&1 & pid=$!; for i in $(seq 1 4800); do "
                             "grep -q '\"step\":200' '" +
                             first.string() +
                             "' 2>/dev/null && break; sleep 0.05; done; "
                             "kill -9 -- -$pid; wait $pid; exit 0\n";
  std::ofstream(root_ / "kill.sh") << script;
  ASSERT_EQ(std::system(("bash '" + (root_ / "kill.sh").string() + "'").c_str()), 0);
  const std::string finished = read_all(first);
  ASSERT_TRUE(contains(finished, "\"step\":200")) << "the first run did not finish in time";
  EXPECT_FALSE(fs::exists(out() / "report.md")) << "killed before the report";

  const Result r = reproduce("--only single_layer");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_EQ(read_all(first), finished) << "the finished run was not retrained";
  EXPECT_FALSE(contains(r.err, "started lsa_1layer_s1")) << r.err;
  EXPECT_TRUE(
      contains(read_all(out() / "runs" / "mesa_1layer_s1" / "metrics.jsonl"), "\"step\":200"));
  EXPECT_TRUE(fs::exists(out() / "report.html"));
}

TEST_F(ReproduceCliTest, CorruptRunFailsItsExperimentOnly) {
  ASSERT_EQ(reproduce("--only one_gd_step").code, 0);
  const fs::path ckpt = out() / "runs" / "lsa_1layer_s1" / "ckpt" / "latest.safetensors";
  fs::resize_file(ckpt, fs::file_size(ckpt) / 2);
  const Result r = reproduce("--only baselines --only one_gd_step");
  EXPECT_EQ(r.code, 1) << describe(r);
  EXPECT_TRUE(contains(r.err, "FAILED")) << r.err;
  EXPECT_EQ(result("one_gd_step")["verdict"], "FAILED");
  EXPECT_TRUE(contains(result("one_gd_step")["measured"].get<std::string>(), "latest.safetensors"))
      << result("one_gd_step").dump(2);
  EXPECT_NE(result("baselines")["verdict"], "FAILED") << "the other experiment goes on";
  EXPECT_TRUE(fs::exists(out() / "report.md"));
}

TEST_F(ReproduceCliTest, BadInputIsOneLineAndExitTwo) {
  Result r = reproduce("--only nonsense");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "unknown experiment 'nonsense'") && contains(r.err, "baselines"))
      << r.err;
  std::ofstream(root_ / "a_file") << "x";
  r = mesalab("reproduce --quick --only baselines --out '" + (root_ / "a_file" / "sub").string() +
              "'");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "cannot write to --out")) << r.err;
  r = reproduce("--jobs 0 --only one_gd_step");
  EXPECT_EQ(r.code, 2) << describe(r);
}

TEST_F(ReproduceCliTest, PlanAndSlurmGiveOneCommandPerRun) {
  const Result plan = reproduce("--only single_layer --plan");
  ASSERT_EQ(plan.code, 0) << describe(plan);
  EXPECT_EQ(testing::nonempty_lines(plan.out).size(), 2u) << plan.out;
  EXPECT_TRUE(contains(plan.out, "train --config") && contains(plan.out, "--continue"));
  const Result slurm =
      reproduce("--only single_layer --slurm '" + (root_ / "slurm").string() + "'");
  ASSERT_EQ(slurm.code, 0) << describe(slurm);
  const fs::path script = root_ / "slurm" / "mesalab_reproduce.sbatch";
  ASSERT_TRUE(fs::exists(script));
  EXPECT_EQ(std::system(("bash -n '" + script.string() + "'").c_str()), 0);
  // Task 0 run locally trains the first run.
  ASSERT_EQ(
      std::system(("SLURM_ARRAY_TASK_ID=0 bash '" + script.string() + "' >/dev/null 2>&1").c_str()),
      0);
  EXPECT_TRUE(
      contains(read_all(out() / "runs" / "lsa_1layer_s1" / "metrics.jsonl"), "\"step\":200"));
  const Result collect = reproduce("--only single_layer --collect");
  EXPECT_EQ(collect.code, 1) << "mesa_1layer_s1 was not trained: " << describe(collect);
  EXPECT_TRUE(contains(result("single_layer")["measured"].get<std::string>(),
                       "mesa_1layer_s1 has not been trained"));
}

}  // namespace
}  // namespace mesalab
