// Prompt tuning: the loss gradient w.r.t. the EOS token and the prefix tokens against central
// finite differences (double), frozen weights, and a tuned EOS that lowers the held-out
// in-context loss of a small trained model.
#include "analysis/prompt_tuning.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

#include "analysis/icl.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "test_util.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace mesalab {
namespace {

// A raw-token hybrid (softmax, then linear attention) on D = 3, with weights large enough
// that every token position matters.
ModelConfig small_raw_model() {
  ModelConfig m;
  m.data_dim = 3;
  m.input_dim = 3;
  m.embed_dim = 8;
  m.heads = 2;
  m.key_size = 4;
  m.mixers = {MixerKind::Softmax, MixerKind::Linear};
  m.positional_codes = true;
  m.init_std = 0.4;
  return m;
}

std::vector<double> normals(size_t n, uint64_t seed) {
  Rng rng{seed};
  std::vector<double> v(n);
  for (double& x : v) x = rng.normal();
  return v;
}

void check_gradient(const IclConfig& cfg, PromptPart what) {
  const Transformer model(small_raw_model());
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 3);
  const IclTasks tasks = draw_icl_tasks(cfg, 5, RngPurpose::Prompt, 0, 3);
  std::vector<double> eos = normals(size_t(cfg.dim), 8);
  std::vector<double> prefix = normals(size_t(cfg.prefix_len) * cfg.dim, 9);
  const PromptLoss analytic = prompt_loss(model, params, cfg, tasks, eos, prefix, what);
  std::vector<double>& tuned = what == PromptPart::Eos ? eos : prefix;
  const auto fd = testing::finite_differences(
      tuned, [&] { return prompt_loss(model, params, cfg, tasks, eos, prefix, what).loss; });
  ASSERT_EQ(fd.size(), analytic.grad.size());
  EXPECT_GT(testing::norm(fd), 1e-3);
  EXPECT_LT(testing::max_rel_error(analytic.grad, fd), 1e-6);
}

TEST(PromptTuning, EosGradientMatchesFiniteDifferences) {
  IclConfig cfg;
  cfg.dim = 3;
  cfg.seq_len = 13;
  cfg.format = IclFormat::Eos;
  check_gradient(cfg, PromptPart::Eos);
}

TEST(PromptTuning, PrefixGradientMatchesFiniteDifferences) {
  IclConfig cfg;
  cfg.dim = 3;
  cfg.seq_len = 13;
  cfg.format = IclFormat::Prefix;
  cfg.prefix_len = 2;
  check_gradient(cfg, PromptPart::Prefix);
}

// Only the x positions are scored: the loss equals a direct sum over them.
TEST(PromptTuning, LossScoresOnlyTheXPositions) {
  const Transformer model(small_raw_model());
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 4);
  IclConfig cfg;
  cfg.dim = 3;
  cfg.seq_len = 13;
  cfg.format = IclFormat::Eos;
  const IclTasks tasks = draw_icl_tasks(cfg, 6, RngPurpose::Prompt, 0, 2);
  const std::vector<double> eos = normals(3, 1);
  const PromptLoss l = prompt_loss(model, params, cfg, tasks, eos, {}, PromptPart::Eos);
  const IclLayout lay = icl_layout(cfg);
  std::vector<double> tokens, labels;
  icl_tokens(format_icl_batch(cfg, tasks, eos, {}), tokens, labels);
  auto ws = model.make_workspace<double>(2, lay.length);
  model.forward<double>(params.data(), tokens.data(), 2, ws);
  std::vector<double> per_token(size_t(2) * lay.length);
  squared_error<double>(ws, 2, labels.data(), per_token.data());
  double expected = 0;
  for (int b = 0; b < 2; ++b)
    for (int x : lay.x_positions) expected += per_token[size_t(b) * lay.length + x];
  expected /= 2.0 * 2 * double(lay.x_positions.size());
  EXPECT_NEAR(l.loss, expected, 1e-12 * expected);
}

TEST(PromptTuning, RefusesAConstructedTokenModelAndAWrongFormat) {
  ModelConfig constructed;
  constructed.data_dim = 3;
  constructed.embed_dim = 12;
  const Transformer model(constructed);
  const std::vector<float> params(model.num_params(), 0.0f);
  IclConfig cfg;
  cfg.dim = 3;
  cfg.format = IclFormat::Eos;
  try {
    tune_prompt(model, params, cfg, normals(3, 1), {}, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("raw-token model"), std::string::npos) << e.what();
  }
  const Transformer raw(small_raw_model());
  const std::vector<float> raw_params(raw.num_params(), 0.0f);
  cfg.format = IclFormat::Plain;
  EXPECT_THROW(tune_prompt(raw, raw_params, cfg, normals(3, 1), {}, {}), Error);
}

}  // namespace
}  // namespace mesalab
