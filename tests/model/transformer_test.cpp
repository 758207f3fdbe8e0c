#include "model/transformer.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

// D = 2, E = 8, H = 2, K = 3.
ModelConfig tiny_config(std::vector<MixerKind> mixers) {
  ModelConfig cfg;
  cfg.data_dim = 2;
  cfg.embed_dim = 8;
  cfg.heads = 2;
  cfg.key_size = 3;
  cfg.mixers = std::move(mixers);
  return cfg;
}

// positional_codes_qk: the first block's queries and keys are [a, P] [W; W_pos] by a direct
// sum over both halves; values and later blocks see no codes.
TEST(Transformer, PositionalCodesQkConcatenateToQueriesAndKeysOfTheFirstBlock) {
  ModelConfig cfg = tiny_config({MixerKind::Softmax, MixerKind::Linear});
  cfg.input_dim = 2;
  cfg.positional_codes_qk = true;
  const Transformer model(cfg);
  EXPECT_NE(model.layout().find("layers.0.q_pos"), nullptr);
  EXPECT_EQ(model.layout().find("layers.1.q_pos"), nullptr);
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 3);
  for (double& p : params) p *= 1e3;  // init_std 2e-4: make the codes' part visible
  const int B = 2, T = 5, E = 8, HK = 6;
  std::vector<double> tokens(size_t(B) * T * 2);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::sin(0.7 * double(i) + 0.3);
  auto ws = model.make_workspace<double>(B, T, /*forward_only=*/true);
  model.forward(params.data(), tokens.data(), B, ws);
  const auto at = [&](const char* name) { return params.data() + model.layout().at(name).offset; };
  const LayerView<const double> l0 = std::as_const(ws).layer(0);
  double max_err = 0.0;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < HK; ++j) {
        double q = 0.0, k = 0.0, v = 0.0;
        for (int e = 0; e < E; ++e) {
          const double x = l0.input[(size_t(b) * T + t) * E + e];
          const double pe = e % 2 == 0 ? std::sin(t * std::pow(10000.0, -double(e) / E))
                                       : std::cos(t * std::pow(10000.0, -double(e - 1) / E));
          q += x * at("layers.0.q")[e * HK + j] + pe * at("layers.0.q_pos")[e * HK + j];
          k += x * at("layers.0.k")[e * HK + j] + pe * at("layers.0.k_pos")[e * HK + j];
          v += x * at("layers.0.v")[e * HK + j];
        }
        const size_t n = (size_t(b) * T + t) * HK + j;
        max_err = std::max(
            {max_err, std::abs(l0.q[n] - q), std::abs(l0.k[n] - k), std::abs(l0.v[n] - v)});
      }
  EXPECT_LT(max_err, 1e-12);
  // The residual stream carries no codes: the input of block 0 is tokens Win alone.
  for (int e = 0; e < E; ++e)
    EXPECT_NEAR(l0.input[e], tokens[0] * at("embed.in")[e] + tokens[1] * at("embed.in")[E + e],
                1e-14);
}

TEST(Transformer, MesaFailureNamesTheLayerAndHead) {
  const Transformer model(tiny_config({MixerKind::Linear, MixerKind::Mesa}));
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 1);
  params[model.layout().at("layers.1.lambdas").offset + 1] = -0.5;  // lambda must be > 0
  std::vector<double> tokens(4 * 8, 0.1), labels(4 * 2, 0.0);
  auto ws = model.make_workspace<double>(1, 4);
  try {
    testing::forward_backward<double>(model, params.data(), tokens.data(), labels.data(), 1, ws);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("layer 1 (mesa)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("head 1"), std::string::npos) << msg;
    EXPECT_EQ(e.exit_code(), 1) << msg;
  }
}

TEST(Transformer, DetectAnomalyNamesTheLayerTensorAndToken) {
  ModelConfig cfg = tiny_config({MixerKind::Linear, MixerKind::Softmax});
  cfg.init_std = 0.3;
  std::vector<double> tokens(2 * 5 * 8, 0.1), labels(2 * 5 * 2, 0.0);
  // Sequence 1, token 3. (The masked products multiply a NaN by an exact 0 inside a
  // diagonal block, so the reported token may be an earlier one of the same block.)
  tokens[(1 * 5 + 3) * 8 + 4] = NAN;
  for (bool detect : {false, true}) {
    cfg.detect_anomaly = detect;
    const Transformer model(cfg);
    std::vector<double> params(model.num_params());
    model.init_params(params.data(), 2);
    auto ws = model.make_workspace<double>(2, 5);
    if (!detect) {
      EXPECT_TRUE(std::isnan(testing::forward_backward<double>(model, params.data(), tokens.data(),
                                                               labels.data(), 2, ws)));
      continue;
    }
    try {
      testing::forward_backward<double>(model, params.data(), tokens.data(), labels.data(), 2, ws);
      FAIL() << "expected an anomaly";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("layer 0 (lsa)"), std::string::npos) << msg;
      EXPECT_NE(msg.find("mixer output"), std::string::npos) << msg;
      EXPECT_NE(msg.find("sequence 1"), std::string::npos) << msg;
    }
  }
}

TEST(Transformer, ParameterNamesAndShapes) {
  ModelConfig cfg;
  cfg.mixers = {MixerKind::Softmax, MixerKind::Mesa};
  const Transformer model(cfg);
  EXPECT_EQ(model.layout().at("layers.0.q").shape, (std::vector<int64_t>{40, 80}));
  EXPECT_EQ(model.layout().at("layers.1.o").shape, (std::vector<int64_t>{80, 40}));
  EXPECT_EQ(model.layout().at("layers.1.lambdas").shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(model.layout().find("layers.0.lambdas"), nullptr);
  EXPECT_EQ(model.num_params(), size_t(2 * 4 * 3200 + 4));
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 5);
  const float* lambdas = params.data() + model.layout().at("layers.1.lambdas").offset;
  for (int h = 0; h < 4; ++h) EXPECT_EQ(lambdas[h], 1.0f);
  double sum_sq = 0;
  for (size_t i = 0; i < 3200; ++i) sum_sq += double(params[i]) * params[i];
  EXPECT_NEAR(std::sqrt(sum_sq / 3200), 2e-4, 2e-5);  // init std
}

}  // namespace
}  // namespace mesalab
