// RevAlg analysis (analysis/revalg.hpp): exact extraction of block scalars from constructed
// weights, the closed form against the Transformer's own forward pass, failure of the
// structure metric on unstructured weights, and the GD-with-learned-(eta, W0) regression.
#include "analysis/revalg.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <vector>

#include "analysis/baselines.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/stats.hpp"
#include "data/sequences.hpp"
#include "data/tokens.hpp"

namespace mesalab {
namespace {

using Grid = std::array<std::array<double, kTokenSlots>, kTokenSlots>;

// kron(scalars, I_D): (4D x 4D) with block (a, b) = scalars[a][b] I_D.
RowMatrix<double> block_scalar_matrix(const Grid& scalars, int dim) {
  RowMatrix<double> m = RowMatrix<double>::Zero(kTokenSlots * dim, kTokenSlots * dim);
  for (int a = 0; a < kTokenSlots; ++a)
    for (int b = 0; b < kTokenSlots; ++b)
      m.block(a * dim, b * dim, dim, dim).diagonal().setConstant(scalars[a][b]);
  return m;
}

Grid random_grid(Rng& rng) {
  Grid g;
  for (auto& row : g)
    for (double& v : row) v = rng.uniform(-1.0, 1.0);
  return g;
}

// A 1-layer LSA on constructed tokens with K = E, so that per head Wk_h = Wv_h = I,
// Wq_h = M_QK and P_h = M_PV give Wq_h Wk_h^T = M_QK and Wv_h P_h = M_PV exactly.
struct ConstructedModel {
  Transformer model;
  std::vector<double> params;
  std::vector<Grid> qk, pv;  // per head
};

ConstructedModel constructed_model(int dim, int heads, double clip, uint64_t seed,
                                   double scale = 1.0) {
  ModelConfig c;
  c.data_dim = dim;
  c.embed_dim = kTokenSlots * dim;
  c.heads = heads;
  c.key_size = c.embed_dim;
  c.mixers = {MixerKind::Linear};
  c.clip_act = clip;
  ConstructedModel m{Transformer(c), {}, {}, {}};
  m.params.assign(m.model.num_params(), 0.0);
  const int E = c.embed_dim, K = c.key_size, HK = heads * K;
  const LayerOffsets& o = m.model.layer(0);
  auto wq = mat(m.params.data() + o.q, E, HK);
  auto wk = mat(m.params.data() + o.k, E, HK);
  auto wv = mat(m.params.data() + o.v, E, HK);
  auto wo = mat(m.params.data() + o.o, HK, E);
  Rng rng{seed};
  for (int h = 0; h < heads; ++h) {
    Grid qk = random_grid(rng), pv = random_grid(rng);
    for (auto& row : qk)
      for (double& v : row) v *= scale;
    m.qk.push_back(qk);
    m.pv.push_back(pv);
    wq.middleCols(h * K, K) = block_scalar_matrix(qk, dim);
    wk.middleCols(h * K, K).setIdentity();
    wv.middleCols(h * K, K).setIdentity();
    wo.middleRows(h * K, K) = block_scalar_matrix(pv, dim);
  }
  return m;
}

TEST(RevAlg, ExtractionIsExactOnBlockScalarWeights) {
  const int dim = 3, heads = 2;
  const ConstructedModel m = constructed_model(dim, heads, 0.0, 11);
  const std::vector<LayerStructure> layers = weight_structure(m.model, m.params.data());
  ASSERT_EQ(layers.size(), 1u);
  ASSERT_EQ(layers[0].heads.size(), size_t(heads));
  EXPECT_EQ(layers[0].kind, MixerKind::Linear);
  for (int h = 0; h < heads; ++h) {
    SCOPED_TRACE(h);
    EXPECT_EQ(head_qk(m.model, m.params.data(), 0, h), block_scalar_matrix(m.qk[size_t(h)], dim));
    EXPECT_EQ(head_pv(m.model, m.params.data(), 0, h), block_scalar_matrix(m.pv[size_t(h)], dim));
    const HeadStructure& hs = layers[0].heads[size_t(h)];
    for (const auto& [grid, expected] :
         {std::pair{&hs.qk, &m.qk[size_t(h)]}, std::pair{&hs.pv, &m.pv[size_t(h)]}}) {
      double total = 0.0;
      for (int a = 0; a < kTokenSlots; ++a) {
        for (int b = 0; b < kTokenSlots; ++b) {
          const BlockStats& s = grid->blocks[a][b];
          const double x = (*expected)[a][b];
          EXPECT_NEAR(s.scalar, x, 1e-12);
          EXPECT_NEAR(s.energy, dim * x * x, 1e-12);
          EXPECT_NEAR(s.diag_fraction, 1.0, 1e-12);
          EXPECT_NEAR(s.identity_fraction, 1.0, 1e-12);
          total += dim * x * x;
        }
      }
      EXPECT_NEAR(grid->total_energy, total, 1e-12);
      EXPECT_NEAR(grid->diagonal_energy_fraction, 1.0, 1e-12);
      EXPECT_NEAR(grid->identity_energy_fraction, 1.0, 1e-12);
    }
    const RevAlgHead rh = revalg_heads(layers[0])[size_t(h)];
    for (int a = 0; a < kTokenSlots; ++a) {
      EXPECT_NEAR(rh.pv[a], m.pv[size_t(h)][a][0], 1e-12);
      for (int b = 0; b < kTokenSlots; ++b) EXPECT_NEAR(rh.qk[a][b], m.qk[size_t(h)][a][b], 1e-12);
    }
  }
}

TEST(RevAlg, BlockStatsSeparateDiagonalFromIdentity) {
  // Block (1, 2) = diag(1, -1): all energy diagonal, none in a scaled identity (trace 0).
  // Block (3, 0) = all ones: diagonal share 1/D, identity share (D m^2) / D^2 = 1/D.
  const int dim = 2;
  RowMatrix<double> m = RowMatrix<double>::Zero(8, 8);
  m(2, 4) = 1.0;
  m(3, 5) = -1.0;
  m.block(6, 0, 2, 2).setOnes();
  const BlockGrid g = block_grid(m, dim);
  EXPECT_DOUBLE_EQ(g.blocks[1][2].scalar, 0.0);
  EXPECT_DOUBLE_EQ(g.blocks[1][2].diag_fraction, 1.0);
  EXPECT_DOUBLE_EQ(g.blocks[1][2].identity_fraction, 0.0);
  EXPECT_DOUBLE_EQ(g.blocks[3][0].scalar, 1.0);
  EXPECT_DOUBLE_EQ(g.blocks[3][0].diag_fraction, 0.5);
  EXPECT_DOUBLE_EQ(g.blocks[3][0].identity_fraction, 0.5);
  EXPECT_DOUBLE_EQ(g.blocks[0][0].diag_fraction, 0.0);  // zero block
  EXPECT_DOUBLE_EQ(g.total_energy, 6.0);
  EXPECT_DOUBLE_EQ(g.diagonal_energy_fraction, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(g.identity_energy_fraction, 2.0 / 6.0);
  EXPECT_THROW(block_grid(RowMatrix<double>::Zero(8, 7), dim), Error);
}

// Predictions of Transformer::forward<double>: the first D channels of x_L, (B, T, D).
std::vector<double> model_predictions(const ConstructedModel& m, const std::vector<double>& states,
                                      int batch, int seq_len, int dim, bool masked = false) {
  const int E = kTokenSlots * dim;
  std::vector<double> tokens(size_t(batch) * seq_len * E), labels(size_t(batch) * seq_len * dim);
  build_constructed_tokens(states.data(), batch, seq_len, dim, tokens.data(), labels.data(),
                           masked);
  Workspace<double> ws = m.model.make_workspace<double>(batch, seq_len);
  m.model.forward(m.params.data(), tokens.data(), batch, ws);
  const PredictionView<double> pred = ws.prediction();
  std::vector<double> preds(size_t(batch) * seq_len * dim);
  for (size_t n = 0; n < size_t(batch) * seq_len; ++n)
    for (int d = 0; d < dim; ++d) preds[n * dim + d] = pred.data[n * pred.stride + d];
  return preds;
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Default linear data of dimension dim and length seq_len: (batch, seq_len + 1, dim).
std::vector<double> test_states(int dim, int seq_len, int batch, uint64_t seed) {
  DataConfig data;
  data.dim = dim;
  data.seq_len = seq_len;
  return sample_states(data, seed, RngPurpose::TestData, 0, batch);
}

TEST(RevAlg, ClosedFormEqualsTransformerForward) {
  const int dim = 3, seq_len = 9, batch = 6;
  const std::vector<double> states = test_states(dim, seq_len, batch, 5);
  for (const double clip : {0.0, 0.5}) {
    SCOPED_TRACE(clip);
    const ConstructedModel m = constructed_model(dim, 3, clip, 23);
    const std::vector<double> expected = model_predictions(m, states, batch, seq_len, dim);
    const RevAlgCoefficients w =
        revalg_coefficients(revalg_heads(weight_structure(m.model, m.params.data())[0]));
    const std::vector<double> got = revalg_predictions(w, states.data(), batch, seq_len, dim, clip);
    ASSERT_EQ(got.size(), expected.size());
    const double scale = max_abs(expected);
    ASSERT_GT(scale, clip > 0 ? clip * 0.999 : 1.0);  // non-trivial (and clipping binds)
    EXPECT_LE(max_abs_diff(got, expected), 1e-10 * scale);
  }
  // The check has teeth: another draw of the scalars predicts differently.
  const ConstructedModel m = constructed_model(dim, 3, 0.0, 23);
  const ConstructedModel other = constructed_model(dim, 3, 0.0, 24);
  const RevAlgCoefficients w_other =
      revalg_coefficients(revalg_heads(weight_structure(other.model, other.params.data())[0]));
  EXPECT_GT(max_abs_diff(revalg_predictions(w_other, states.data(), batch, seq_len, dim, 0.0),
                         model_predictions(m, states, batch, seq_len, dim)),
            1e-3);
}

TEST(RevAlg, ClosedFormOfMaskedInputsEqualsTransformerForward) {
  // Tokens [0, 0, s_t, s_{t-1}] (official mask_inputs): slot 1 carries nothing, so its
  // scalars must drop out of the coefficients.
  const int dim = 3, seq_len = 9, batch = 6;
  const std::vector<double> states = test_states(dim, seq_len, batch, 5);
  const ConstructedModel m = constructed_model(dim, 2, 0.0, 31);
  const std::vector<double> expected = model_predictions(m, states, batch, seq_len, dim, true);
  const auto heads = revalg_heads(weight_structure(m.model, m.params.data())[0]);
  const std::vector<double> masked =
      revalg_predictions(revalg_coefficients(heads, true), states.data(), batch, seq_len, dim, 0.0);
  const std::vector<double> full = revalg_predictions(revalg_coefficients(heads, false),
                                                      states.data(), batch, seq_len, dim, 0.0);
  const double scale = max_abs(expected);
  ASSERT_GT(scale, 1e-3);
  EXPECT_LE(max_abs_diff(masked, expected), 1e-10 * scale);
  EXPECT_GT(max_abs_diff(full, expected), 1e-3 * scale) << "slot 1 must matter unmasked";
}

TEST(RevAlg, GdConstructionIsGdOne) {
  // qk[1][3] = eta (s_t . s_{i-1}) and pv[1] = 1 (value s_i): w[cur][prev][cur] = eta only,
  // which is one GD step from W = 0, so the closed form reproduces the GD-1 baseline.
  const int dim = 4, seq_len = 12, batch = 16;
  const double eta = 0.037;
  RevAlgHead h;
  h.qk[1][3] = eta;
  h.pv[1] = 1.0;
  const RevAlgCoefficients w = revalg_coefficients({h});
  for (int q = 0; q < 2; ++q)
    for (int k = 0; k < 2; ++k)
      for (int v = 0; v < 2; ++v) EXPECT_EQ(w[q][k][v], (q == 0 && k == 1 && v == 0) ? eta : 0.0);
  const std::vector<double> states = test_states(dim, seq_len, batch, 3);
  const std::vector<double> revalg = revalg_curve(w, states.data(), batch, seq_len, dim, 0.0);
  const std::vector<double> gd = gd1_curve(states.data(), batch, seq_len, dim, eta);
  for (int t = 0; t < seq_len; ++t) EXPECT_NEAR(revalg[size_t(t)], gd[size_t(t)], 1e-12) << t;
}

TEST(RevAlg, RandomWeightsAreNotStructured) {
  ModelConfig c;
  c.data_dim = 4;
  c.embed_dim = 16;
  c.heads = 2;
  c.key_size = 8;
  c.mixers = {MixerKind::Linear, MixerKind::Softmax};
  c.init_std = 1.0;
  const Transformer model(c);
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 9);
  const std::vector<LayerStructure> layers = weight_structure(model, params.data());
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[1].kind, MixerKind::Softmax);
  for (const LayerStructure& ls : layers) {
    for (const HeadStructure& hs : ls.heads) {
      for (const BlockGrid* g : {&hs.qk, &hs.pv}) {
        // About 1/D of a dense random block is diagonal and ~1/D^2 a scaled identity.
        EXPECT_LT(g->diagonal_energy_fraction, 0.5);
        EXPECT_LT(g->identity_energy_fraction, 0.25);
        EXPECT_GT(g->total_energy, 0.0);
      }
    }
  }
}

TEST(RevAlg, StructureRefusesUnslottedModels) {
  ModelConfig c;
  c.mixers = {MixerKind::Linear, MixerKind::Mesa};
  EXPECT_NE(structure_ineligibility(c).find("mesa"), std::string::npos);
  const Transformer mesa(c);
  const std::vector<double> params(mesa.num_params(), 0.0);
  EXPECT_THROW(weight_structure(mesa, params.data()), Error);
  c.mixers = {MixerKind::Linear};
  c.embed_dim = 44;
  EXPECT_NE(structure_ineligibility(c).find("4 x data_dim"), std::string::npos);
  c.embed_dim = 40;
  EXPECT_EQ(structure_ineligibility(c), "");
}

TEST(RevAlg, ClosedFormEligibility) {
  const auto why = [](std::vector<std::string> sets) {
    return closed_form_ineligibility(make_run_config(nlohmann::json(), sets));
  };
  EXPECT_EQ(why({"model.layers=1"}), "");
  EXPECT_NE(why({}).find("2 layers"), std::string::npos);
  EXPECT_NE(why({"model.layers=1", "model.layer=softmax"}).find("softmax"), std::string::npos);
  EXPECT_NE(why({"model.layers=1", "model.mlp=true"}).find("MLP"), std::string::npos);
  EXPECT_NE(why({"model.layers=1", "model.layer_norm=true"}).find("LayerNorm"), std::string::npos);
}

// g_t = sum_{i<=t} (s_t . s_{i-1}) s_i (s_0 = 0), by the definition's double loop.
std::vector<double> brute_force_directions(const double* seq, int seq_len, int dim) {
  std::vector<double> g(size_t(seq_len) * dim, 0.0);
  for (int t = 1; t <= seq_len; ++t) {
    const double* s_t = seq + size_t(t - 1) * dim;
    for (int i = 2; i <= t; ++i) {
      const double* s_prev = seq + size_t(i - 2) * dim;
      const double* s_i = seq + size_t(i - 1) * dim;
      double dot = 0.0;
      for (int d = 0; d < dim; ++d) dot += s_t[d] * s_prev[d];
      for (int d = 0; d < dim; ++d) g[size_t(t - 1) * dim + d] += dot * s_i[d];
    }
  }
  return g;
}

TEST(RevAlg, GdW0FitEqualsDirectRegression) {
  const int dim = 3, seq_len = 7, batch = 40;
  DataConfig data;
  data.dim = dim;
  data.seq_len = seq_len;
  const std::vector<double> states = sample_states(data, 2, RngPurpose::Tuning, 0, batch);
  const GdW0Fit fit = fit_gd_w0(states.data(), batch, seq_len, dim);
  ASSERT_EQ(fit.dim, dim);
  ASSERT_EQ(fit.w0.size(), size_t(dim * dim));

  // One row per (b, t, d): y = s_{t+1}[d], features eta: g_t[d], W0[j][d]: s_t[j].
  const int rows = batch * seq_len * dim, cols = dim * dim + 1;
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(rows, cols);
  Eigen::VectorXd y(rows);
  int r = 0;
  for (int b = 0; b < batch; ++b) {
    const double* seq = states.data() + size_t(b) * (seq_len + 1) * dim;
    const std::vector<double> g = brute_force_directions(seq, seq_len, dim);
    for (int t = 0; t < seq_len; ++t) {
      for (int d = 0; d < dim; ++d, ++r) {
        x(r, 0) = g[size_t(t) * dim + d];
        for (int j = 0; j < dim; ++j) x(r, 1 + j * dim + d) = seq[size_t(t) * dim + j];
        y(r) = seq[size_t(t + 1) * dim + d];
      }
    }
  }
  const Eigen::VectorXd theta = x.colPivHouseholderQr().solve(y);
  EXPECT_NEAR(fit.eta, theta(0), 1e-8 * std::abs(theta(0)));
  for (int i = 0; i < dim * dim; ++i)
    EXPECT_NEAR(fit.w0[size_t(i)], theta(1 + i), 1e-8 * std::max(1.0, std::abs(theta(1 + i))));

  // The curve uses the same model: its mean is the regression's residual / (2 B T).
  const std::vector<double> curve = gd_w0_curve(fit, states.data(), batch, seq_len, dim);
  EXPECT_NEAR(curve_mean(curve), (x * theta - y).squaredNorm() / (2.0 * batch * seq_len), 1e-10);
  // With W0 = 0 the model is GD-1.
  GdW0Fit gd_only{0.05, dim, std::vector<double>(size_t(dim * dim), 0.0)};
  const std::vector<double> a = gd_w0_curve(gd_only, states.data(), batch, seq_len, dim);
  const std::vector<double> b = gd1_curve(states.data(), batch, seq_len, dim, 0.05);
  for (int t = 0; t < seq_len; ++t) EXPECT_NEAR(a[size_t(t)], b[size_t(t)], 1e-12) << t;
  EXPECT_THROW(fit_gd_w0(states.data(), batch, 1, dim), Error);  // no GD direction at T = 1
}

// f_qkv(t) = sum_{i<=t} (x_q(t) . x_k(i)) x_v(i), x_0(i) = s_i, x_1(i) = s_{i-1}, s_0 = 0, by
// the definition's double loop; (T, D) row-major.
std::vector<double> brute_force_feature(const double* seq, int seq_len, int dim, int q, int k,
                                        int v) {
  const std::vector<double> zero(size_t(dim), 0.0);
  // x(type, i) for i = 1..T: s_i is row i-1; s_{i-1} is row i-2 or zero.
  const auto x = [&](int type, int i) {
    const int row = i - 1 - type;
    return row < 0 ? zero.data() : seq + size_t(row) * dim;
  };
  std::vector<double> f(size_t(seq_len) * dim, 0.0);
  for (int t = 1; t <= seq_len; ++t) {
    for (int i = 1; i <= t; ++i) {
      double dot = 0.0;
      for (int d = 0; d < dim; ++d) dot += x(q, t)[d] * x(k, i)[d];
      for (int d = 0; d < dim; ++d) f[size_t(t - 1) * dim + d] += dot * x(v, i)[d];
    }
  }
  return f;
}

TEST(RevAlg, FittedCoefficientsEqualDirectRegression) {
  const int dim = 3, seq_len = 8, batch = 30;
  DataConfig data;
  data.dim = dim;
  data.seq_len = seq_len;
  const std::vector<double> states = sample_states(data, 4, RngPurpose::Tuning, 0, batch);
  const RevAlgCoefficients w = fit_revalg_coefficients(states.data(), batch, seq_len, dim);
  const int rows = batch * seq_len * dim;
  Eigen::MatrixXd x(rows, 8);
  Eigen::VectorXd y(rows);
  for (int b = 0; b < batch; ++b) {
    const double* seq = states.data() + size_t(b) * (seq_len + 1) * dim;
    for (int m = 0; m < 8; ++m) {
      const std::vector<double> f =
          brute_force_feature(seq, seq_len, dim, m / 4, (m / 2) % 2, m % 2);
      for (int i = 0; i < seq_len * dim; ++i) x(b * seq_len * dim + i, m) = f[size_t(i)];
    }
    for (int i = 0; i < seq_len * dim; ++i) y(b * seq_len * dim + i) = seq[dim + i];
  }
  const Eigen::VectorXd theta = x.colPivHouseholderQr().solve(y);
  for (int m = 0; m < 8; ++m)
    EXPECT_NEAR(w[m / 4][(m / 2) % 2][m % 2], theta(m), 1e-8 * std::max(1.0, std::abs(theta(m))))
        << m;
  // The closed form's predictions are x w; in-sample the fit beats GD-1 (a special case).
  const std::vector<double> curve = revalg_curve(w, states.data(), batch, seq_len, dim, 0.0);
  EXPECT_NEAR(curve_mean(curve), (x * theta - y).squaredNorm() / (2.0 * batch * seq_len), 1e-10);
  const double eta = tune_gd_eta(states.data(), batch, seq_len, dim);
  EXPECT_LT(curve_mean(curve), curve_mean(gd1_curve(states.data(), batch, seq_len, dim, eta)));
}

TEST(RevAlg, ClippedGdEtaMinimisesTheClippedLoss) {
  const int dim = 4, seq_len = 30, batch = 64;
  DataConfig data;
  data.dim = dim;
  data.seq_len = seq_len;
  const std::vector<double> states = sample_states(data, 6, RngPurpose::Tuning, 0, batch);
  const double eta0 = tune_gd_eta(states.data(), batch, seq_len, dim);
  EXPECT_EQ(tune_clipped_gd_eta(states.data(), batch, seq_len, dim, 0.0), eta0);
  const double clip = 0.5;  // binds often, so the optimum moves
  const double eta = tune_clipped_gd_eta(states.data(), batch, seq_len, dim, clip);
  const auto loss = [&](double e) {
    RevAlgCoefficients w{};
    w[0][1][0] = e;
    return curve_mean(revalg_curve(w, states.data(), batch, seq_len, dim, clip));
  };
  const double best = loss(eta);
  EXPECT_GT(std::abs(eta - eta0), 1e-3 * std::abs(eta0));
  for (int i = 0; i <= 400; ++i) EXPECT_LE(best, loss(i * 0.01 * eta0) + 1e-12) << i;
  EXPECT_LE(best, loss(eta * (1 + 1e-4)) + 1e-12);
  EXPECT_LE(best, loss(eta * (1 - 1e-4)) + 1e-12);
}

TEST(RevAlg, LearnedW0RecoversAFixedTransition) {
  DataConfig data;
  data.dim = 4;
  data.seq_len = 20;
  data.kind = DynamicsKind::Fixed;
  const int dim = data.dim, seq_len = data.seq_len, batch = 128;
  const std::vector<double> w = fixed_transition(data);  // s_{k+1} = W s_k + noise
  const std::vector<double> tuning = sample_states(data, 1, RngPurpose::Tuning, 0, batch);
  const std::vector<double> test = sample_states(data, 1, RngPurpose::TestData, 0, batch);
  const GdW0Fit fit = fit_gd_w0(tuning.data(), batch, seq_len, dim);
  // Row convention: pred^T = s_t^T W0, so W0 -> W^T.
  double err = 0.0, norm = 0.0;
  for (int j = 0; j < dim; ++j) {
    for (int d = 0; d < dim; ++d) {
      const double diff = fit.w0[size_t(j * dim + d)] - w[size_t(d * dim + j)];
      err += diff * diff;
      norm += w[size_t(d * dim + j)] * w[size_t(d * dim + j)];
    }
  }
  EXPECT_LT(std::sqrt(err / norm), 0.02);
  const double eta = tune_gd_eta(tuning.data(), batch, seq_len, dim);
  const double learned = curve_mean(gd_w0_curve(fit, test.data(), batch, seq_len, dim));
  const double gd1 = curve_mean(gd1_curve(test.data(), batch, seq_len, dim, eta));
  // The noise floor is D sigma^2 / 2 = 2e-4; GD-1 from W0 = 0 is far above it.
  EXPECT_LT(learned, 1e-3);
  EXPECT_LT(learned, 0.05 * gd1);
}

}  // namespace
}  // namespace mesalab
