// Tests of report/run_figures: metrics.jsonl parsing (values, nulls, errors with line
// numbers) and that each builder puts the results' numbers, unchanged, into the panels and
// series the figures promise (names, dashes, log axes, heat-map matrices).
#include "report/run_figures.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "analysis/revalg.hpp"
#include "cli/cli_util.hpp"
#include "core/error.hpp"
#include "test_util.hpp"

namespace mesalab::report {
namespace {

using testing::contains;

// Expects `f` to throw a bad-input Error whose message contains `expected`.
template <class F>
void expect_error(F&& f, const std::string& expected) {
  try {
    f();
    ADD_FAILURE() << "no error, expected: " << expected;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_TRUE(contains(e.what(), expected))
        << "message: " << e.what() << "\nexpected: " << expected;
  }
}

std::vector<double> steps(size_t n) {
  std::vector<double> t;
  for (size_t i = 1; i <= n; ++i) t.push_back(double(i));
  return t;
}

TEST(RunFigures, ParsesMetricsLines) {
  const std::string text =
      R"({"step":0,"test_loss":1.5,"lr":0.0,"elapsed_s":0.1,"train_loss":null})"
      "\n\n"
      R"({"step":10,"test_loss":0.75,"lr":1e-4,"elapsed_s":2.5,"train_loss":0.8})"
      "\n";
  const std::vector<MetricsLine> m = parse_metrics(text, "m.jsonl");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].step, 0);
  EXPECT_TRUE(std::isnan(m[0].train_loss));
  EXPECT_EQ(m[0].test_loss, 1.5);
  EXPECT_EQ(m[1].step, 10);
  EXPECT_EQ(m[1].train_loss, 0.8);
  EXPECT_EQ(m[1].lr, 1e-4);
  EXPECT_EQ(m[1].elapsed_s, 2.5);
}

TEST(RunFigures, MalformedMetricsNameFileAndLine) {
  const std::string good = R"({"step":0,"test_loss":1.5,"lr":0.0})";
  expect_error(
      [&] { parse_metrics(good + "\n" + good + "\n{\"step\": 2,", "runs/x/metrics.jsonl"); },
      "runs/x/metrics.jsonl:3: not a JSON object");
  expect_error([&] { parse_metrics(R"({"step":0,"lr":0.0})", "m"); }, "m:1: no \"test_loss\"");
  expect_error([&] { parse_metrics(R"({"step":0,"test_loss":"x","lr":0})", "m"); },
               "m:1: \"test_loss\" is not a number");
  expect_error([&] { read_metrics("/nonexistent/run/metrics.jsonl"); },
               "no metrics at /nonexistent/run/metrics.jsonl");
  expect_error([&] { training_figure({}); }, "no metrics lines");
}

TEST(RunFigures, TrainingFigureHasLossesAndLearningRate) {
  const std::vector<MetricsLine> m = {
      {0, NAN, 1.6, 0.0, 0.1}, {5, 1.4, 1.2, 1e-4, 0.5}, {10, 1.0, 0.9, 2e-4, 0.9}};
  const Figure f = training_figure(m, "training: runs/x");
  EXPECT_EQ(f.title, "training: runs/x");
  ASSERT_EQ(f.panels.size(), 2u);
  const Panel& loss = f.panels[0];
  EXPECT_TRUE(loss.logy);
  ASSERT_EQ(loss.series.size(), 2u);
  EXPECT_EQ(loss.series[0].name, "train loss");
  // The first line has no train loss yet: no point at step 0.
  EXPECT_EQ(loss.series[0].x, (std::vector<double>{5, 10}));
  EXPECT_EQ(loss.series[0].y, (std::vector<double>{1.4, 1.0}));
  EXPECT_EQ(loss.series[1].name, "test loss");
  EXPECT_EQ(loss.series[1].x, (std::vector<double>{0, 5, 10}));
  EXPECT_EQ(loss.series[1].y, (std::vector<double>{1.6, 1.2, 0.9}));
  const Panel& lr = f.panels[1];
  EXPECT_FALSE(lr.logy);
  ASSERT_EQ(lr.series.size(), 1u);
  EXPECT_EQ(lr.series[0].y, (std::vector<double>{0.0, 1e-4, 2e-4}));
  EXPECT_FALSE(lr.xlabel.empty());
  EXPECT_FALSE(lr.ylabel.empty());
}

TEST(RunFigures, PerStepFigureDashesTheReferences) {
  const std::vector<std::pair<std::string, std::vector<double>>> columns = {
      {"model", {3, 2, 1}}, {"revalg1", {3, 2, 1.5}}, {"zero", {4, 4, 4}}};
  Figure f = per_step_figure("eval", columns);
  ASSERT_EQ(f.panels.size(), 1u);
  const Panel& p = f.panels[0];
  EXPECT_TRUE(p.logy);
  ASSERT_EQ(p.series.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(p.series[i].name, columns[i].first);
    EXPECT_EQ(p.series[i].x, steps(3));
    EXPECT_EQ(p.series[i].y, columns[i].second);
    EXPECT_EQ(p.series[i].dashed, i > 0) << i;
  }
  f = per_step_figure("eval", columns, 2);
  EXPECT_FALSE(f.panels[0].series[1].dashed);
  EXPECT_TRUE(f.panels[0].series[2].dashed);
  expect_error([] { per_step_figure("empty", {}); }, "figure 'empty': no curves");
}

ProbeResult probe_result(ProbeTarget target, int layers, int seq_len) {
  ProbeResult r{target, layers, seq_len};
  for (int t = 0; t < seq_len; ++t)
    for (int l = 0; l <= layers; ++l) r.loss.push_back(1.0 + t + 10.0 * l);
  return r;
}

TEST(RunFigures, ProbeFigureHasOnePanelPerTargetAndOneLinePerLayer) {
  const std::vector<ProbeResult> results = {probe_result(ProbeTarget::Next, 2, 4),
                                            probe_result(ProbeTarget::InverseCurrent, 2, 4)};
  const ControlResult control{{0.5, 0.4, 0.3, 0.2}};
  const Figure f = probe_figure(results, &control);
  ASSERT_EQ(f.panels.size(), 2u);
  for (const Panel& p : f.panels) {
    EXPECT_TRUE(p.logy);
    ASSERT_GE(p.series.size(), 3u);
    EXPECT_EQ(p.series[0].name, "input");
    EXPECT_EQ(p.series[2].name, "layer 2");
    EXPECT_EQ(p.series[2].x, steps(4));
    EXPECT_EQ(p.series[2].y, (std::vector<double>{21, 22, 23, 24}));  // loss_at(t, 2)
  }
  ASSERT_EQ(f.panels[0].series.size(), 3u);
  ASSERT_EQ(f.panels[1].series.size(), 4u);
  EXPECT_EQ(f.panels[1].series[3].name, "control");
  EXPECT_TRUE(f.panels[1].series[3].dashed);
  EXPECT_EQ(f.panels[1].series[3].y, control.loss);

  // Without an inverse-target panel the control gets its own.
  const Figure alone = probe_figure({results[0]}, &control);
  ASSERT_EQ(alone.panels.size(), 2u);
  EXPECT_EQ(alone.panels[1].series[0].y, control.loss);
  EXPECT_EQ(probe_figure({results[0]}, nullptr).panels.size(), 1u);
}

TEST(RunFigures, WeightHeatmapsAreTheHeadProducts) {
  ModelConfig c;
  c.data_dim = 3;
  c.embed_dim = 12;
  c.heads = 2;
  c.key_size = 5;
  c.mixers = {MixerKind::Linear, MixerKind::Softmax};
  c.init_std = 1.0;
  const Transformer model(c);
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 5);
  const Figure f = weight_heatmap_figure(model, params.data(), "weights");
  ASSERT_EQ(f.panels.size(), 2u * 2u * 2u);
  EXPECT_EQ(f.panels[6].title, "layer 2 head 2: W_Q W_K^T");
  EXPECT_EQ(f.panels[7].title, "layer 2 head 2: W_V W_O");
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 2; ++h)
      for (int which = 0; which < 2; ++which) {
        const Heatmap& m = f.panels[size_t(4 * l + 2 * h + which)].heatmap;
        const RowMatrix<double> expected =
            which == 0 ? head_qk(model, params.data(), l, h) : head_pv(model, params.data(), l, h);
        ASSERT_EQ(m.rows, 12);
        ASSERT_EQ(m.cols, 12);
        EXPECT_ALL_CLOSE(m.values.data(), expected.data(), 144, 0.0);
      }
}

}  // namespace
}  // namespace mesalab::report
