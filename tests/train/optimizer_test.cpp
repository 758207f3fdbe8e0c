#include "train/optimizer.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

TEST(Schedule, MatchesReferenceValues) {
  const OptimConfig cfg;  // defaults are the paper's
  for (const auto& [step, value] :
       testing::reference_fixture()["optimizer"]["default_schedule"].items())
    EXPECT_NEAR(learning_rate(cfg, std::stoll(step)), value.get<double>(), 1e-15)
        << "step " << step;
}

TEST(Schedule, KeyPointsOfTheIssue) {
  const OptimConfig cfg;
  EXPECT_EQ(learning_rate(cfg, 0), 0.0);
  EXPECT_NEAR(learning_rate(cfg, 500), 1.5e-4, 1e-18);
  EXPECT_NEAR(learning_rate(cfg, 1000), 3e-4, 1e-18);
  EXPECT_NEAR(learning_rate(cfg, 10000), 1e-5 + 2.9e-4 * 0.5 * (1 + std::cos(M_PI * 9000 / 19000)),
              1e-15);
  EXPECT_NEAR(learning_rate(cfg, 20000), 1e-5, 1e-18);
}

TEST(AdamW, HandComputedStepWithClippingAndDecay) {
  OptimConfig cfg;
  cfg.use_schedule = false;
  cfg.peak_lr = 0.1;
  double p[2] = {0.5, -2.0}, g[2] = {3.0, -0.25}, m[2] = {0, 0}, v[2] = {0, 0};
  adamw_step(cfg, 0, p, g, m, v, 2);
  // First step: m_hat = g_clipped, v_hat = g_clipped^2, so the Adam direction is sign(g)
  // up to eps; g[0] = 3 is clipped to 1.
  EXPECT_NEAR(m[0], 0.1 * 1.0, 1e-15);
  EXPECT_NEAR(v[0], 0.001 * 1.0, 1e-15);
  EXPECT_NEAR(p[0], 0.5 - 0.1 * (1.0 / (1.0 + 1e-8) + 0.05 * 0.5), 1e-12);
  EXPECT_NEAR(p[1], -2.0 - 0.1 * (-0.25 / (0.25 + 1e-8) + 0.05 * -2.0), 1e-12);
}

TEST(AdamW, MatchesReferenceTrace) {
  const auto& ref = testing::reference_fixture()["optimizer"];
  OptimConfig cfg;
  cfg.peak_lr = 0.1;
  cfg.init_lr = 0.0;
  cfg.warmup_steps = 2;
  cfg.decay_steps = 6;
  cfg.end_lr = 0.001;
  // The fixture's parameters are two tensors; the optimizer is element-wise, so flatten.
  std::vector<double> params;
  for (const auto& tensor : ref["init_params"]) {
    const auto t = testing::flatten(tensor);
    params.insert(params.end(), t.begin(), t.end());
  }
  std::vector<double> m(params.size(), 0.0), v(params.size(), 0.0);
  for (const auto& step : ref["steps"]) {
    const int64_t k = step["count"];
    EXPECT_NEAR(learning_rate(cfg, k), step["lr"].get<double>(), 1e-15);
    std::vector<double> grads, expected;
    for (const auto& t : step["grads"]) {
      const auto f = testing::flatten(t);
      grads.insert(grads.end(), f.begin(), f.end());
    }
    for (const auto& t : step["params_after"]) {
      const auto f = testing::flatten(t);
      expected.insert(expected.end(), f.begin(), f.end());
    }
    ASSERT_EQ(grads.size(), params.size());
    adamw_step(cfg, k, params.data(), grads.data(), m.data(), v.data(), params.size());
    SCOPED_TRACE("optimizer step " + std::to_string(k));
    EXPECT_ALL_CLOSE(params.data(), expected.data(), params.size(), 1e-10);
  }
}

TEST(OptimConfig, RejectsBadValues) {
  OptimConfig cfg;
  cfg.peak_lr = -1;
  EXPECT_THROW(cfg.validate(), Error);
  cfg = OptimConfig{};
  cfg.decay_steps = 10;
  EXPECT_THROW(cfg.validate(), Error);
}

}  // namespace
}  // namespace mesalab
