// End-to-end tests of `mesalab revalg`: a tiny 1-layer LSA run gets the block structure and
// the closed-form loss comparison (JSON on stdout and RUN_DIR/revalg.json); a softmax run
// gets the structure only, with a note, and is refused (exit 2) under --closed-form; models
// without token slots (mesa) and missing runs are bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_util.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using testing::contains;
using testing::describe;
using testing::nonempty_lines;
using testing::read_all;
using testing::Result;

class RevalgCliTest : public testing::CliFixture {
 protected:
  RevalgCliTest() : CliFixture("mesalab_revalg_") {}

  // A tiny run: 30 steps of 16 sequences of length 10, one test batch of 16.
  fs::path train(const std::string& name, const std::string& extra) {
    const Result r =
        mesalab("train --set name=" + name + " --set train.runs_dir='" + runs_.string() +
                "' --set train.steps=30 --set train.batch_size=16 --set data.seq_len=10 "
                "--set train.test_batches=1 --set train.test_batch_size=16 --quiet --json " +
                extra);
    EXPECT_EQ(r.code, 0) << describe(r);
    return runs_ / name;
  }
};

TEST_F(RevalgCliTest, OneLayerLsaReportsStructureAndLosses) {
  const fs::path run = train("lsa", "--set model.layers=1");
  Result r = mesalab("revalg '" + run.string() + "' --json");
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["step"], 30);
  EXPECT_EQ(j["data_dim"], 10);
  ASSERT_EQ(j["structure"].size(), 1u);
  ASSERT_EQ(j["structure"][0]["heads"].size(), 4u);  // default H = 4
  const json& qk = j["structure"][0]["heads"][0]["qk"];
  EXPECT_EQ(qk["scalars"].size(), 4u);
  EXPECT_EQ(qk["scalars"][0].size(), 4u);
  for (const char* key : {"diagonal_energy_fraction", "identity_energy_fraction"}) {
    const double f = qk[key].get<double>();
    EXPECT_TRUE(f >= 0.0 && f <= 1.0) << key << " = " << f;
  }
  EXPECT_TRUE(j["closed_form_note"].get<std::string>().empty());
  // RevAlg-d: same model loss as the closed-form comparison (same test set), its own curve.
  ASSERT_TRUE(j["revalg_d"].is_object()) << r.out;
  EXPECT_EQ(j["revalg_d"]["revalg_d"]["per_t"].size(), 10u);
  EXPECT_EQ(j["revalg_d"]["layers"][0].size(), 4u);
  EXPECT_DOUBLE_EQ(j["revalg_d"]["model"]["mean"].get<double>(),
                   j["closed_form"]["losses"]["model"].get<double>());
  EXPECT_TRUE(fs::exists(run / "figures" / "revalg_d_curves.svg"));
  ASSERT_TRUE(j["closed_form"].is_object()) << r.out;
  const json& losses = j["closed_form"]["losses"];
  for (const char* name : {"model", "revalg1", "revalg1_unclipped", "revalg1_fitted", "gd1",
                           "gd1_clipped", "gd_w0", "gd_step_w0", "least_squares", "zero"}) {
    ASSERT_TRUE(losses.contains(name) && losses[name].is_number()) << name << ": " << r.out;
    const double v = losses[name].get<double>();
    EXPECT_TRUE(std::isfinite(v) && v > 0.0) << name << " = " << v;
    EXPECT_EQ(j["closed_form"]["curves"][name].size(), 10u) << name;
  }
  EXPECT_EQ(j["closed_form"]["coefficients"].size(), 8u);
  // Sparsity of every head's products, as the report reads it.
  EXPECT_EQ(j["sparsity"]["relative_threshold"], 0.01);
  ASSERT_EQ(j["sparsity"]["heads"].size(), 4u);
  for (const json& h : j["sparsity"]["heads"]) {
    EXPECT_EQ(h["layer"], 0);
    for (const char* key : {"qk", "pv"})
      EXPECT_TRUE(h[key].get<double>() > 0.0 && h[key].get<double>() <= 1.0) << h;
  }
  EXPECT_EQ(j["closed_form"]["gd_w0"]["w0"].size(), 10u);
  EXPECT_EQ(j["closed_form"]["gd_step"]["w0"].size(), 10u);
  // The file holds the same report.
  const json file = json::parse(read_all(run / "revalg.json"), nullptr, false);
  ASSERT_FALSE(file.is_discarded());
  EXPECT_EQ(file, j);

  // The trained model's loss is eval's (same test set), and GD-1 is the baselines' GD-1.
  const Result e = mesalab("eval --json '" + run.string() + "'");
  ASSERT_EQ(e.code, 0) << describe(e);
  const json ej = json::parse(e.out, nullptr, false);
  ASSERT_FALSE(ej.is_discarded()) << e.out;
  EXPECT_NEAR(losses["model"].get<double>(), ej["model"]["mean"].get<double>(),
              1e-12 * ej["model"]["mean"].get<double>());
  EXPECT_DOUBLE_EQ(j["closed_form"]["gd_eta"].get<double>(), ej["gd_eta"].get<double>());

  r = mesalab("revalg '" + run.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  for (const char* text : {"layer 0 (lsa), head 3", "M_QK", "M_PV", "RevAlg-1", "least squares"})
    EXPECT_TRUE(contains(r.out, text)) << text << " missing from:\n" << r.out;
  r = mesalab("revalg '" + run.string() + "' --closed-form --json");
  EXPECT_EQ(r.code, 0) << describe(r);
}

TEST_F(RevalgCliTest, SoftmaxRunGetsStructureOnlyAndRefusesClosedForm) {
  const fs::path run = train("sm", "--set model.layers=1 --set model.layer=softmax");
  Result r = mesalab("revalg '" + run.string() + "' --json");
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_TRUE(j["closed_form"].is_null());
  EXPECT_TRUE(contains(j["closed_form_note"].get<std::string>(), "softmax")) << r.out;
  EXPECT_TRUE(j["revalg_d"].is_null());
  EXPECT_TRUE(contains(j["revalg_d_note"].get<std::string>(), "softmax")) << r.out;
  ASSERT_EQ(j["structure"].size(), 1u);
  EXPECT_EQ(j["structure"][0]["kind"], "softmax");

  r = mesalab("revalg '" + run.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "no closed-form comparison")) << r.out;

  r = mesalab("revalg --closed-form '" + run.string() + "'");
  EXPECT_EQ(r.code, 2) << describe(r);
  const auto lines = nonempty_lines(r.out + r.err);
  ASSERT_EQ(lines.size(), 1u) << describe(r);
  EXPECT_TRUE(contains(lines[0], "softmax")) << lines[0];
  EXPECT_TRUE(r.out.empty()) << describe(r);
}

TEST_F(RevalgCliTest, UnslottedOrMissingRunsAreBadInput) {
  const fs::path run = train("mesa", "--set model.layers=1 --set model.layer=mesa");
  Result r = mesalab("revalg '" + run.string() + "'");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "mesa")) << describe(r);
  EXPECT_EQ(nonempty_lines(r.err).size(), 1u) << describe(r);
  EXPECT_FALSE(fs::exists(run / "revalg.json"));

  r = mesalab("revalg '" + (root_ / "nope").string() + "'");
  EXPECT_EQ(r.code, 2) << describe(r);
  r = mesalab("revalg");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "run_dir")) << describe(r);
  r = mesalab("revalg --help");
  EXPECT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "--closed-form")) << describe(r);
}

TEST_F(RevalgCliTest, InterpolateReplaysTheRunAndWritesItsCurves) {
  const fs::path run = train("lsa2", "--set train.eval_every=10 --set train.checkpoint_every=30");
  Result r = mesalab("interpolate '" + run.string() + "' --quiet --json");
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["steps"], json({0, 10, 20, 30}));
  EXPECT_EQ(j["replay_max_difference"], 0.0) << "the replay is the recorded trajectory";
  EXPECT_EQ(j["model"], j["recorded"]);
  EXPECT_EQ(j["alpha"], 0.5);
  const json file = json::parse(read_all(run / "interpolation.json"), nullptr, false);
  ASSERT_FALSE(file.is_discarded());
  EXPECT_EQ(file["final_step"], 30);
  EXPECT_EQ(file["interpolated"], j["interpolated"]);
  EXPECT_TRUE(fs::exists(run / "figures" / "interpolation.csv"));
  EXPECT_FALSE(fs::exists(run / "interpolation.tmp"));

  r = mesalab("interpolate '" + run.string() + "' --quiet");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "interpolated (alpha = 0.5)")) << r.out;
  r = mesalab("interpolate '" + run.string() + "' --alpha 2");
  EXPECT_EQ(r.code, 2) << describe(r);

  const fs::path softmax = train("sm2", "--set model.layer=softmax");
  r = mesalab("interpolate '" + softmax.string() + "' --quiet");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "softmax")) << describe(r);
  EXPECT_EQ(nonempty_lines(r.err).size(), 1u) << describe(r);
}

}  // namespace
}  // namespace mesalab
