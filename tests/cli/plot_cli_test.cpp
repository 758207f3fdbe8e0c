// End-to-end tests of the figures of the CLI: `mesalab plot` draws a tiny run's training
// curves into RUN_DIR/figures/, eval, probe and revalg add theirs, MESALAB_GNUPLOT pointing
// nowhere still leaves the CSV and script with a warning, and missing runs are bad input.
#include <gtest/gtest.h>

#include <filesystem>
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

class PlotCliTest : public testing::CliFixture {
 protected:
  PlotCliTest() : CliFixture("mesalab_plot_") {}

  // A tiny 1-layer LSA run: 20 steps of 16 sequences of length 8, evaluated every 5 steps.
  fs::path train() {
    const Result r =
        mesalab("train --set name=tiny --set train.runs_dir='" + runs_.string() +
                "' --set train.steps=20 --set train.eval_every=5 --set train.batch_size=16 "
                "--set data.seq_len=8 --set train.test_batches=1 --set train.test_batch_size=16 "
                "--set model.layers=1 --quiet --json");
    EXPECT_EQ(r.code, 0) << describe(r);
    return runs_ / "tiny";
  }

  // A rendered figure: both files, the svg naming `legend`.
  void expect_rendered(const fs::path& stem, const std::string& legend) {
    const std::string svg = read_all(stem.string() + ".svg");
    EXPECT_TRUE(contains(svg, "</svg>")) << stem;
    EXPECT_TRUE(contains(svg, legend)) << stem << ": no '" << legend << "'";
    EXPECT_EQ(read_all(stem.string() + ".png").substr(0, 4), "\x89PNG") << stem;
    EXPECT_TRUE(fs::exists(stem.string() + ".csv")) << stem;
    EXPECT_TRUE(fs::exists(stem.string() + ".gp")) << stem;
  }
};

TEST_F(PlotCliTest, PlotDrawsTheTrainingCurves) {
  const fs::path run = train();
  const Result r = mesalab("plot '" + run.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  const fs::path figures = run / "figures";
  expect_rendered(figures / "training", "test loss");
  for (const char* ext : {"svg", "png", "csv", "gp"})
    EXPECT_TRUE(contains(r.out, (figures / "training.").string() + ext)) << r.out;
  // 5 evaluations (steps 0, 5, 10, 15, 20): train loss from step 5 on, test loss and lr always.
  EXPECT_EQ(testing::nonempty_lines(read_all(figures / "training.csv")).size(), 1u + 4u + 5u + 5u);

  const Result j = mesalab("plot --json '" + run.string() + "'");
  ASSERT_EQ(j.code, 0) << describe(j);
  const json out = json::parse(j.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << j.out;
  EXPECT_EQ(out["rendered"], true);
  EXPECT_EQ(out["svg"], (figures / "training.svg").string());
  EXPECT_EQ(out["csv"], (figures / "training.csv").string());
}

TEST_F(PlotCliTest, WithoutGnuplotTheDataAndScriptAreWritten) {
  const fs::path run = train();
  const Result r = mesalab("plot '" + run.string() + "'", "MESALAB_GNUPLOT=/nonexistent/gnuplot");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "gnuplot not found")) << r.err;
  EXPECT_TRUE(contains(
      r.err, "render them with: cd " + (run / "figures").string() + " && gnuplot training.gp"))
      << r.err;
  EXPECT_TRUE(fs::exists(run / "figures" / "training.csv"));
  EXPECT_TRUE(fs::exists(run / "figures" / "training.gp"));
  EXPECT_FALSE(fs::exists(run / "figures" / "training.svg"));

  // An empty MESALAB_GNUPLOT turns rendering off without a warning.
  const Result quiet = mesalab("plot '" + run.string() + "'", "MESALAB_GNUPLOT=");
  ASSERT_EQ(quiet.code, 0) << describe(quiet);
  EXPECT_EQ(quiet.err, "");
}

TEST_F(PlotCliTest, MissingRunOrMetricsIsBadInput) {
  Result r = mesalab("plot '" + (runs_ / "absent").string() + "'");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "no run directory at")) << r.err;
  fs::create_directories(runs_ / "empty");
  r = mesalab("plot '" + (runs_ / "empty").string() + "'");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "no metrics at")) << r.err;
}

TEST_F(PlotCliTest, EvalProbeAndRevalgWriteTheirFigures) {
  const fs::path run = train();
  const fs::path figures = run / "figures";
  Result r = mesalab("eval '" + run.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  expect_rendered(figures / "eval", "least_squares_all_pairs");
  EXPECT_TRUE(contains(r.out, "figure: " + (figures / "eval.svg").string())) << r.out;

  r = mesalab("probe --target all --batch 64 '" + run.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  expect_rendered(figures / "probes", "control");
  EXPECT_TRUE(contains(r.out, "figure: " + (figures / "probes.svg").string())) << r.out;

  r = mesalab("revalg '" + run.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  expect_rendered(figures / "revalg_weights", "layer 1 head 4: W_V W_O");
  expect_rendered(figures / "revalg_curves", "gd_w0");
  EXPECT_TRUE(contains(r.out, "figure: " + (figures / "revalg_weights.svg").string())) << r.out;
  EXPECT_TRUE(contains(r.out, "figure: " + (figures / "revalg_curves.svg").string())) << r.out;
}

}  // namespace
}  // namespace mesalab
