// RevAlg-d: block-scalar weights round-trip through the extraction exactly; the RevAlg-d
// transformer's forward equals a direct evaluation of its formula
//   x <- clip(x + sum_h sum_{i<=t} (x_t^T Q_h x_i) (x_i^T V_h)),  Q_h = q_h (x) I, V_h = v_h (x) I;
// and only linear-attention models on constructed tokens qualify.
#include "analysis/revalg_d.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/error.hpp"

namespace mesalab {
namespace {

constexpr int D = 3, E = 4 * D, H = 2, L = 2;

ModelConfig trained_config() {
  ModelConfig c;
  c.data_dim = D;
  c.embed_dim = E;
  c.heads = H;
  c.key_size = 5;
  c.mixers = {MixerKind::Linear, MixerKind::Linear};
  c.clip_act = 1.5;
  return c;
}

std::vector<RevAlgDLayer> random_scalars(unsigned seed, double scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> n(0.0, scale);
  std::vector<RevAlgDLayer> layers(L, RevAlgDLayer(H));
  for (auto& layer : layers)
    for (auto& head : layer)
      for (int a = 0; a < kTokenSlots; ++a)
        for (int b = 0; b < kTokenSlots; ++b) {
          head.q[a][b] = n(gen);
          head.v[a][b] = n(gen);
        }
  return layers;
}

TEST(RevAlgD, BlockScalarWeightsRoundTripThroughTheExtraction) {
  const Transformer model(revalg_d_config(trained_config()));
  EXPECT_EQ(model.config().key_size, E);
  const auto scalars = random_scalars(7, 1.0);
  const std::vector<double> params = revalg_d_params(model, scalars);
  const std::vector<LayerStructure> structure = weight_structure(model, params.data());
  const auto back = revalg_d_scalars(structure);
  ASSERT_EQ(back.size(), size_t(L));
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h) {
      for (int a = 0; a < kTokenSlots; ++a)
        for (int b = 0; b < kTokenSlots; ++b) {
          EXPECT_NEAR(back[l][h].q[a][b], scalars[l][h].q[a][b], 1e-12);
          EXPECT_NEAR(back[l][h].v[a][b], scalars[l][h].v[a][b], 1e-12);
        }
      EXPECT_NEAR(structure[l].heads[h].qk.identity_energy_fraction, 1.0, 1e-12);
      EXPECT_NEAR(structure[l].heads[h].pv.identity_energy_fraction, 1.0, 1e-12);
    }
}

TEST(RevAlgD, ForwardEqualsTheFormula) {
  const int B = 2, T = 6;
  const Transformer model(revalg_d_config(trained_config()));
  const auto scalars = random_scalars(11, 0.3);
  const std::vector<double> params = revalg_d_params(model, scalars);
  std::mt19937 gen(3);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> tokens(size_t(B) * T * E);
  for (double& v : tokens) v = u(gen);
  auto ws = model.make_workspace<double>(B, T);
  model.forward<double>(params.data(), tokens.data(), B, ws);
  const double* out = ws.layer(L - 1).output;  // x[L]: the final residual stream

  for (int b = 0; b < B; ++b) {
    std::vector<double> x(tokens.begin() + size_t(b) * T * E,
                          tokens.begin() + size_t(b + 1) * T * E);
    for (int l = 0; l < L; ++l) {
      std::vector<double> next = x;
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h) {
          const RevAlgDHead& hd = scalars[l][h];
          for (int i = 0; i <= t; ++i) {
            double score = 0.0;  // x_t^T (q (x) I) x_i
            for (int a = 0; a < kTokenSlots; ++a)
              for (int c = 0; c < kTokenSlots; ++c)
                for (int j = 0; j < D; ++j)
                  score += x[t * E + a * D + j] * hd.q[a][c] * x[i * E + c * D + j];
            for (int a = 0; a < kTokenSlots; ++a)  // + score * x_i^T (v (x) I)
              for (int c = 0; c < kTokenSlots; ++c)
                for (int j = 0; j < D; ++j)
                  next[t * E + c * D + j] += score * x[i * E + a * D + j] * hd.v[a][c];
          }
        }
      for (double& v : next) v = std::clamp(v, -1.5, 1.5);
      x = next;
    }
    for (int k = 0; k < T * E; ++k)
      EXPECT_NEAR(out[size_t(b) * T * E + k], x[k], 1e-12) << b << " " << k;
  }
}

TEST(RevAlgD, OnlyLinearAttentionOnConstructedTokensQualifies) {
  RunConfig cfg = make_run_config(nullptr, {"model.layers=2"});
  EXPECT_EQ(revalg_d_ineligibility(cfg), "");
  cfg = make_run_config(nullptr, {"model.layer=[\"lsa\",\"softmax\"]"});
  EXPECT_NE(revalg_d_ineligibility(cfg).find("layer 2 is 'softmax'"), std::string::npos);
  cfg = make_run_config(nullptr, {"model.mlp=true"});
  EXPECT_NE(revalg_d_ineligibility(cfg).find("MLP"), std::string::npos);
  const Transformer model(cfg.model);
  EXPECT_THROW(compare_revalg_d(cfg, model, std::vector<float>(model.num_params())), Error);
}

}  // namespace
}  // namespace mesalab
