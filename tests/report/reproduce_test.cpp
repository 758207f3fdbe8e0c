// The registry and planning of `mesalab reproduce`: every experiment's presets resolve at
// both scales, names are unique, unknown names list the valid ones, runs shared by several
// experiments are planned once, and the Slurm script is valid bash that runs task i's command.
#include "report/reproduce.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "cli/cli_util.hpp"
#include "core/error.hpp"
#include "train/presets.hpp"

namespace mesalab::report {
namespace {

namespace fs = std::filesystem;
using mesalab::testing::contains;

TEST(Registry, NamesUniqueAndEveryPresetResolvesAtBothScales) {
  std::set<std::string> names;
  for (const Experiment& e : experiment_registry()) {
    EXPECT_TRUE(names.insert(e.name).second) << e.name;
    EXPECT_FALSE(e.claim.empty() || e.source.empty() || e.criterion.empty()) << e.name;
    EXPECT_TRUE(bool(e.analyse)) << e.name;
    for (const Scale& s : {quick_scale(), full_scale(5, 5)})
      for (const RunSpec& spec : e.runs(s)) {
        SCOPED_TRACE(e.name + " / " + spec.name());
        EXPECT_NO_THROW(preset_run_config(spec.preset, s.overrides));
      }
  }
  EXPECT_GE(names.size(), 6u);
}

TEST(Registry, UnknownExperimentListsTheValidOnes) {
  try {
    select_experiments({"baselines", "no_such_thing"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "no_such_thing")) << e.what();
    EXPECT_TRUE(contains(e.what(), "single_layer") && contains(e.what(), "probes")) << e.what();
  }
  EXPECT_EQ(select_experiments({}).size(), experiment_registry().size());
  ASSERT_EQ(select_experiments({"probes", "baselines"}).size(), 2u);
  EXPECT_EQ(select_experiments({"probes", "baselines"})[0]->name, "baselines") << "registry order";
}

TEST(Registry, FullScaleSeedsAreThePapersAndBounded) {
  EXPECT_EQ(full_scale(3).seeds, (std::vector<uint64_t>{1, 11, 111}));
  EXPECT_EQ(full_scale(3).test_seeds, kPaperSeeds);
  EXPECT_THROW(full_scale(0), Error);
  EXPECT_THROW(full_scale(6), Error);
  EXPECT_THROW(full_scale(3, 0), Error);
  EXPECT_THROW(full_scale(3, 6), Error);
}

TEST(Registry, SweepPresetsTrainFromTheSweepSeedsOnly) {
  const Experiment& sweep = *select_experiments({"depth_sweep"}).front();
  ASSERT_FALSE(sweep.sweep_presets.empty());
  const std::string headline = sweep.presets.front(), swept = sweep.sweep_presets.front();
  const Scale scale = full_scale(3, 1);
  EXPECT_EQ(sweep.seeds_of(headline, scale), (std::vector<uint64_t>{1, 11, 111}));
  EXPECT_EQ(sweep.seeds_of(swept, scale), (std::vector<uint64_t>{1}));
  EXPECT_EQ(sweep.seeds_of(swept, full_scale(2, 4)), (std::vector<uint64_t>{1, 11, 111, 1111}));
  EXPECT_THROW(sweep.seeds_of("no_such_preset", scale), Error);
  const std::vector<RunSpec> runs = sweep.runs(scale);
  EXPECT_EQ(runs.size(), 3 * sweep.presets.size() + sweep.sweep_presets.size());
  size_t swept_runs = 0;
  for (const RunSpec& r : runs) swept_runs += r.preset == swept;
  EXPECT_EQ(swept_runs, 1u);
  const Context ctx{scale, "out", {}, {}, &sweep};
  EXPECT_EQ(ctx.seeds_of(swept), (std::vector<uint64_t>{1}));
}

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = mesalab::testing::make_temp_dir("mesalab_plan_");
    ASSERT_FALSE(out_.empty());
  }
  void TearDown() override { fs::remove_all(out_); }
  fs::path out_;
};

TEST_F(PlanTest, SharedRunsArePlannedOnceWithResolvedConfigs) {
  const auto runs = plan_runs(select_experiments({"single_layer", "lsa_2layer", "one_gd_step"}),
                              full_scale(2), out_, "/opt/mesalab", 1);
  // lsa_1layer, mesa_1layer, paper_lsa_2layer, lsa_1layer_masked x 2 seeds
  ASSERT_EQ(runs.size(), 8u);
  std::set<std::string> names;
  for (const PlannedRun& r : runs) {
    EXPECT_TRUE(names.insert(r.spec.name()).second) << r.spec.name();
    ASSERT_TRUE(fs::exists(r.config)) << r.config;
    const RunConfig cfg = make_run_config(load_config_file(r.config.string()), {});
    EXPECT_EQ(cfg.name, r.spec.name());
    EXPECT_EQ(cfg.train.seed, r.spec.seed);
    EXPECT_EQ(fs::path(cfg.train.runs_dir) / cfg.name, r.dir);
    EXPECT_EQ(cfg.train.steps, 20000) << "full scale keeps the paper's steps";
    EXPECT_TRUE(contains(r.command(), "/opt/mesalab train --config " + r.config.string() +
                                          " --continue --quiet --set train.threads=1"))
        << r.command();
    EXPECT_FALSE(run_finished(r));
  }
  EXPECT_TRUE(names.count("mesa_1layer_s11"));
}

TEST_F(PlanTest, QuickScaleShortensRuns) {
  const auto runs = plan_runs(select_experiments({"one_gd_step"}), quick_scale(), out_, "m", 0);
  ASSERT_EQ(runs.size(), 2u);  // lsa_1layer, lsa_1layer_masked
  for (const PlannedRun& run : runs) {
    const RunConfig cfg = make_run_config(load_config_file(run.config.string()), {});
    EXPECT_EQ(cfg.train.steps, 200);
    EXPECT_EQ(cfg.train.batch_size, 64);
    EXPECT_FALSE(contains(run.command(), "threads")) << "threads 0: not pinned";
  }
}

TEST_F(PlanTest, SlurmScriptIsValidBashAndRunsTheTasksCommand) {
  // The runs' commands are replaced by `echo` so the task's effect is visible and instant.
  auto runs = plan_runs(select_experiments({"single_layer"}), quick_scale(), out_, "m", 0);
  ASSERT_EQ(runs.size(), 2u);
  for (size_t i = 0; i < runs.size(); ++i)
    runs[i].argv = {"sh", "-c",
                    "echo task " + std::to_string(i) + " ran > " +
                        (out_ / ("task" + std::to_string(i))).string()};
  const std::string script = slurm_script(runs, {4, "01:00:00", "8G", "gpu x"}, out_ / "logs");
  EXPECT_TRUE(contains(script, "#SBATCH --array=0-1"));
  EXPECT_TRUE(contains(script, "#SBATCH --cpus-per-task=4"));
  EXPECT_TRUE(contains(script, "#SBATCH --output=" + (out_ / "logs").string() + "/%A_%a.log"));
  const fs::path path = out_ / "job.sbatch";
  std::ofstream(path) << script;
  EXPECT_EQ(std::system(("bash -n '" + path.string() + "'").c_str()), 0);
  EXPECT_EQ(std::system(("SLURM_ARRAY_TASK_ID=1 bash '" + path.string() + "'").c_str()), 0);
  EXPECT_FALSE(fs::exists(out_ / "task0"));
  EXPECT_EQ(mesalab::testing::read_all(out_ / "task1"), "task 1 ran\n");
  EXPECT_NE(std::system(("bash '" + path.string() + "' 2>/dev/null").c_str()), 0)
      << "without a task id the script refuses";
  EXPECT_THROW(slurm_script({}, {}, out_), Error);
}

}  // namespace
}  // namespace mesalab::report
