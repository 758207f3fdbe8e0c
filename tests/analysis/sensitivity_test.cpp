#include "analysis/sensitivity.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "core/error.hpp"
#include "model/model_prefix.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

// D = 3, E = 8, H = 2, K = 4; weights large enough that attention is far from uniform.
ModelConfig small_model(std::vector<MixerKind> mixers, bool embedding) {
  ModelConfig cfg;
  cfg.data_dim = 3;
  cfg.embed_dim = 8;
  cfg.heads = 2;
  cfg.key_size = 4;
  cfg.mixers = std::move(mixers);
  cfg.input_dim = embedding ? 3 : 0;
  cfg.init_std = 0.4;
  cfg.clip_act = 0;
  return cfg;
}

// The table by its definition, S_k(j) = 1/E sum_l 1/B sum_b ||d x_1[b,k,l] / d u[b,j,:]||,
// with every gradient entry a central finite difference of the FULL model's first-block
// output ws.layer(0).output (one forward per perturbation gives all (k, l)).
SensitivityTable finite_difference_table(const Transformer& model,
                                         const std::vector<double>& params,
                                         std::vector<double> tokens, int B, int T) {
  const int E = model.config().embed_dim, W = model.config().token_dim();
  const std::vector<int> targets = sensitivity_targets(T);
  auto ws = model.make_workspace<double>(B, T, /*forward_only=*/true);
  // grad[((i * E + l) * B + b) * T * W + j * W + w] = d x_1[b, k_i, l] / d u[b, j, w]
  std::vector<double> grad(targets.size() * E * B * T * W);
  std::vector<double> up(targets.size() * E * B), down(up.size());
  auto first_block_out = [&](std::vector<double>& out) {
    model.forward(params.data(), tokens.data(), B, ws);
    const double* x1 = std::as_const(ws).layer(0).output;
    for (size_t i = 0; i < targets.size(); ++i)
      for (int l = 0; l < E; ++l)
        for (int b = 0; b < B; ++b)
          out[(i * E + l) * B + b] = x1[(size_t(b) * T + targets[i]) * E + l];
  };
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < T; ++j)
      for (int w = 0; w < W; ++w) {
        double& u = tokens[(size_t(b) * T + j) * W + w];
        const double u0 = u, h = 1e-6 * std::max(1.0, std::abs(u0));
        u = u0 + h;
        first_block_out(up);
        u = u0 - h;
        first_block_out(down);
        u = u0;
        for (size_t i = 0; i < targets.size(); ++i)
          for (int l = 0; l < E; ++l) {
            const size_t n = (i * E + l) * B + b;
            grad[n * T * W + size_t(j) * W + w] = (up[n] - down[n]) / (2 * h);
          }
      }
  SensitivityTable table{B, targets, {}};
  for (size_t i = 0; i < targets.size(); ++i) {
    std::vector<double> row(size_t(targets[i]) + 1, 0.0);
    for (int l = 0; l < E; ++l)
      for (int b = 0; b < B; ++b)
        for (int j = 0; j <= targets[i]; ++j) {
          const double* g = grad.data() + ((i * E + l) * B + b) * T * W + size_t(j) * W;
          double sq = 0.0;
          for (int w = 0; w < W; ++w) sq += g[w] * g[w];
          row[size_t(j)] += std::sqrt(sq) / (double(B) * E);
        }
    table.values.push_back(row);
  }
  return table;
}

void expect_matches_finite_differences(const ModelConfig& cfg, int B, int T, uint64_t seed) {
  const Transformer model(cfg);
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), seed);
  const std::vector<double> tokens =
      testing::random_vector(size_t(B) * T * cfg.token_dim(), seed + 1);
  const SensitivityTable exact = first_block_sensitivity(model, params.data(), tokens.data(), B, T);
  const SensitivityTable fd = finite_difference_table(model, params, tokens, B, T);
  ASSERT_EQ(exact.targets, fd.targets);
  for (size_t i = 0; i < fd.targets.size(); ++i) {
    ASSERT_EQ(exact.values[i].size(), size_t(fd.targets[i]) + 1);
    EXPECT_LT(testing::rel_error(exact.values[i], fd.values[i]), 1e-6) << "k = " << fd.targets[i];
    // The far positions matter: not a test of the residual path alone.
    if (fd.targets[i] >= 2) EXPECT_GT(fd.values[i][0], 1e-3 * fd.values[i].back());
  }
}

// A softmax first block with the official use_pe_kq codes, raw tokens through an input
// embedding, and a second block that must not enter; B = 11 is not a multiple of the chunk.
TEST(Sensitivity, SoftmaxFirstBlockWithQkCodesMatchesFiniteDifferences) {
  ModelConfig cfg = small_model({MixerKind::Softmax, MixerKind::Linear}, /*embedding=*/true);
  cfg.positional_codes_qk = true;
  expect_matches_finite_differences(cfg, 11, 7, 3);
}

// A mesa first block with LayerNorm, MLP, additive codes and a binding clip.
TEST(Sensitivity, MesaFirstBlockWithNormMlpAndClipMatchesFiniteDifferences) {
  ModelConfig cfg = small_model({MixerKind::Mesa, MixerKind::Softmax}, /*embedding=*/true);
  cfg.layer_norm = true;
  cfg.mlp = true;
  cfg.mlp_hidden = 6;
  cfg.positional_codes = true;
  cfg.clip_act = 1.2;
  expect_matches_finite_differences(cfg, 3, 8, 5);
}

// Constructed tokens (no embedding): the gradient is with respect to the E-wide tokens.
TEST(Sensitivity, LinearFirstBlockOnUnembeddedTokensMatchesFiniteDifferences) {
  ModelConfig cfg = small_model({MixerKind::Linear}, /*embedding=*/false);
  cfg.embed_dim = 12;  // >= data_dim; the token width is E
  expect_matches_finite_differences(cfg, 2, 6, 7);
}

// With Wo = 0 the first block adds nothing: x_1 = u Win, so d x_1[k, l] / d u[j] = delta_jk
// Win[:, l], and S_k(j) = 0 for j < k and 1/E sum_l ||Win[:, l]|| at j = k.
TEST(Sensitivity, WithoutAttentionOnlyTheTokenItselfMatters) {
  const ModelConfig cfg = small_model({MixerKind::Softmax}, /*embedding=*/true);
  const Transformer model(cfg);
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 9);
  const ParamSpec& wo = model.layout().at("layers.0.o");
  std::fill(params.begin() + wo.offset, params.begin() + wo.offset + wo.size, 0.0);
  const ParamSpec& win = model.layout().at("embed.in");  // (D, E)
  const int D = 3, E = 8;
  double expected = 0.0;
  for (int l = 0; l < E; ++l) {
    double sq = 0.0;
    for (int d = 0; d < D; ++d) sq += std::pow(params[win.offset + d * E + l], 2);
    expected += std::sqrt(sq) / E;
  }
  const int B = 5, T = 9;
  const std::vector<double> tokens = testing::random_vector(size_t(B) * T * D, 4);
  const SensitivityTable table = first_block_sensitivity(model, params.data(), tokens.data(), B, T);
  EXPECT_EQ(table.targets, (std::vector<int>{1, 4, 8}));
  for (size_t i = 0; i < table.targets.size(); ++i) {
    const int k = table.targets[i];
    for (int j = 0; j < k; ++j) EXPECT_EQ(table.values[i][size_t(j)], 0.0) << k << " " << j;
    EXPECT_NEAR(table.values[i][size_t(k)], expected, 1e-14 * expected);
  }
  EXPECT_NEAR(table.at_lag(2, 0), expected, 1e-14 * expected);
  EXPECT_TRUE(std::isnan(table.previous_to_old_ratio(2)));  // 0 / 0
  EXPECT_TRUE(std::isnan(table.previous_to_old_ratio(0)));  // k = 1 < 5
}

// The prefix model's stream is the full model's first-block output, bit for bit, and the
// float table does not depend on the thread count.
TEST(Sensitivity, PrefixModelIsTheFirstBlockAndTheTableIsThreadIndependent) {
  testing::ThreadCountGuard guard;
  ModelConfig cfg = small_model({MixerKind::Softmax, MixerKind::Mesa}, /*embedding=*/true);
  cfg.positional_codes_qk = true;
  const Transformer model(cfg);
  const Transformer block = prefix_model(model, 1);
  EXPECT_EQ(block.config().layers(), 1);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 2);
  const std::vector<float> block_params = prefix_params(model, block, params.data());
  const int B = 4, T = 10;
  const std::vector<float> tokens =
      testing::cast<float>(testing::random_vector(size_t(B) * T * 3, 8));
  auto full_ws = model.make_workspace<float>(B, T, true);
  auto block_ws = block.make_workspace<float>(B, T, true);
  model.forward(params.data(), tokens.data(), B, full_ws);
  block.forward(block_params.data(), tokens.data(), B, block_ws);
  const size_t n = size_t(B) * T * cfg.embed_dim;
  const float* a = std::as_const(full_ws).layer(0).output;
  const float* b = std::as_const(block_ws).layer(0).output;
  EXPECT_TRUE(std::equal(a, a + n, b));

  omp_set_num_threads(1);
  const SensitivityTable one = first_block_sensitivity(model, params.data(), tokens.data(), B, T);
  omp_set_num_threads(2);
  const SensitivityTable two = first_block_sensitivity(model, params.data(), tokens.data(), B, T);
  EXPECT_EQ(one.values, two.values);
  EXPECT_THROW(prefix_model(model, 3), Error);
  EXPECT_THROW(sensitivity_targets(1), Error);
}

TEST(Sensitivity, RecordsRoundTripThroughJsonAndBadLinesAreNamed) {
  const SensitivityRecord r{300, {64, {1, 2}, {{0.5, 1.0}, {0.1, 0.2, 0.3}}}};
  const std::string text =
      sensitivity_record_json(r).dump() + "\n\n" + sensitivity_record_json(r).dump() + "\n";
  const std::vector<SensitivityRecord> back = parse_sensitivity_jsonl(text, "s.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].step, 300);
  EXPECT_EQ(back[1].table.values, r.table.values);
  try {
    parse_sensitivity_jsonl(text + "{\"step\": 1}\n", "s.jsonl");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s.jsonl:4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_sensitivity_jsonl(R"({"step":1,"batch":2,"targets":[2],"sensitivity":[[1]]})",
                                       "s.jsonl"),
               Error);
}

}  // namespace
}  // namespace mesalab
