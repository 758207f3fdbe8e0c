#include "analysis/revalg.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "analysis/baselines.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/stats.hpp"
#include "data/sequences.hpp"
#include "model/batch_runner.hpp"
#include "train/evaluation.hpp"

namespace mesalab {

namespace {

// The state type carried by each token slot: -1 = none (a zero slot), 0 = cur (s_t),
// 1 = prev (s_{t-1}); with masked inputs slot 1 is zero too.
constexpr std::array<int, kTokenSlots> kSlotType = {-1, 0, 0, 1};
constexpr std::array<int, kTokenSlots> kMaskedSlotType = {-1, -1, 0, 1};

// The number of held-out sequences GD's parameters are fitted on (as run_baselines).
constexpr int kTuningBatch = 512;

void check_shape(const char* what, int batch, int seq_len, int dim) {
  if (batch < 1 || seq_len < 1 || dim < 1) {
    fail("{}: batch, seq_len and dim must be >= 1, got {}, {}, {}", what, batch, seq_len, dim);
  }
}

// loss_t = sum_b |pred_{b,t} - s_{b,t+1}|^2 / (2B), summed over b in increasing order.
// preds: (B, T, D); states: (B, T + 1, D).
std::vector<double> curve_of_predictions(const std::vector<double>& preds, const double* states,
                                         int batch, int seq_len, int dim) {
  std::vector<double> curve(size_t(seq_len), 0.0);
  for (int b = 0; b < batch; ++b) {
    const double* s = states + size_t(b) * (seq_len + 1) * dim;
    const double* p = preds.data() + size_t(b) * seq_len * dim;
    for (int t = 0; t < seq_len; ++t) {
      double err = 0.0;
      for (int d = 0; d < dim; ++d) {
        const double diff = p[size_t(t) * dim + d] - s[size_t(t + 1) * dim + d];
        err += diff * diff;
      }
      curve[size_t(t)] += err;
    }
  }
  for (double& v : curve) v /= 2.0 * batch;
  return curve;
}

// The closed form's features f_qkv(t) = x_q(t)^T C_kv(t), t = 1..T (row t-1), with
// x_0(i) = s_i, x_1(i) = s_{i-1} (s_0 = 0) and running C_kv(t) = sum_{i<=t} x_k(i) x_v(i)^T
// (the causal sum includes i = t); feature_index(q, k, v) = 4q + 2k + v. seq: (T + 1, D);
// each feature (T, D).
constexpr int kClosedFormTerms = 8;
using ClosedFormFeatures = std::array<RowMatrix<double>, kClosedFormTerms>;

constexpr int feature_index(int q, int k, int v) { return 4 * q + 2 * k + v; }

ClosedFormFeatures closed_form_features(const ConstSequence& seq) {
  const int seq_len = int(seq.rows()) - 1;
  const int dim = int(seq.cols());
  ClosedFormFeatures f;
  for (RowMatrix<double>& m : f) m.resize(seq_len, dim);
  std::array<std::array<Eigen::MatrixXd, 2>, 2> c;
  for (auto& row : c)
    for (Eigen::MatrixXd& m : row) m = Eigen::MatrixXd::Zero(dim, dim);
  std::array<Eigen::RowVectorXd, 2> x = {Eigen::RowVectorXd::Zero(dim),
                                         Eigen::RowVectorXd::Zero(dim)};
  for (int t = 0; t < seq_len; ++t) {
    x[0] = seq.row(t);
    if (t > 0) x[1] = seq.row(t - 1);
    for (int k = 0; k < 2; ++k)
      for (int v = 0; v < 2; ++v) c[k][v].noalias() += x[k].transpose() * x[v];
    for (int q = 0; q < 2; ++q)
      for (int k = 0; k < 2; ++k)
        for (int v = 0; v < 2; ++v) f[feature_index(q, k, v)].row(t).noalias() = x[q] * c[k][v];
  }
  return f;
}

nlohmann::json grid_json(const BlockGrid& g) {
  nlohmann::json scalars, share, diag, ident;
  for (int a = 0; a < kTokenSlots; ++a) {
    nlohmann::json rs, rsh, rd, ri;
    for (int b = 0; b < kTokenSlots; ++b) {
      const BlockStats& s = g.blocks[a][b];
      rs.push_back(s.scalar);
      rsh.push_back(g.total_energy > 0.0 ? s.energy / g.total_energy : 0.0);
      rd.push_back(s.diag_fraction);
      ri.push_back(s.identity_fraction);
    }
    scalars.push_back(rs);
    share.push_back(rsh);
    diag.push_back(rd);
    ident.push_back(ri);
  }
  return {{"scalars", scalars},
          {"energy_share", share},
          {"diag_fraction", diag},
          {"identity_fraction", ident},
          {"total_energy", g.total_energy},
          {"diagonal_energy_fraction", g.diagonal_energy_fraction},
          {"identity_energy_fraction", g.identity_energy_fraction}};
}

const char* state_name(int type, bool query) {
  if (query) return type == 0 ? "s_t" : "s_{t-1}";
  return type == 0 ? "s_i" : "s_{i-1}";
}

}  // namespace

BlockGrid block_grid(const RowMatrix<double>& m, int dim) {
  if (dim < 1 || m.rows() != kTokenSlots * dim || m.cols() != kTokenSlots * dim) {
    fail("block_grid: expected a {0} x {0} matrix (4 D, D = {1}), got {2} x {3}", kTokenSlots * dim,
         dim, m.rows(), m.cols());
  }
  BlockGrid g;
  double diag_energy = 0.0;
  double ident_energy = 0.0;
  for (int a = 0; a < kTokenSlots; ++a) {
    for (int b = 0; b < kTokenSlots; ++b) {
      const auto block = m.block(a * dim, b * dim, dim, dim);
      BlockStats& s = g.blocks[a][b];
      const double on_diag = block.diagonal().squaredNorm();
      s.scalar = block.trace() / dim;
      s.energy = block.squaredNorm();
      // D m^2 = (sum_j B_jj)^2 / D <= sum_j B_jj^2 (Cauchy-Schwarz), so identity <= diag.
      const double ident = dim * s.scalar * s.scalar;
      if (s.energy > 0.0) {
        s.diag_fraction = on_diag / s.energy;
        s.identity_fraction = ident / s.energy;
      }
      g.total_energy += s.energy;
      diag_energy += on_diag;
      ident_energy += ident;
    }
  }
  if (g.total_energy > 0.0) {
    g.diagonal_energy_fraction = diag_energy / g.total_energy;
    g.identity_energy_fraction = ident_energy / g.total_energy;
  }
  return g;
}

// Wq_h: (E, K) = columns hK..(h+1)K-1 of Wq (E, H K); M_QK = Wq_h Wk_h^T.
RowMatrix<double> head_qk(const Transformer& model, const double* params, int layer, int head) {
  const ModelConfig& c = model.config();
  const int E = c.embed_dim, K = c.key_size, HK = c.heads * K;
  const LayerOffsets& o = model.layer(layer);
  const auto wq = mat(params + o.q, E, HK).middleCols(head * K, K);
  const auto wk = mat(params + o.k, E, HK).middleCols(head * K, K);
  return wq * wk.transpose();
}

// Wv_h: (E, K); P_h: (K, E) = rows hK..(h+1)K-1 of Wo (H K, E); M_PV = Wv_h P_h.
RowMatrix<double> head_pv(const Transformer& model, const double* params, int layer, int head) {
  const ModelConfig& c = model.config();
  const int E = c.embed_dim, K = c.key_size, HK = c.heads * K;
  const LayerOffsets& o = model.layer(layer);
  const auto wv = mat(params + o.v, E, HK).middleCols(head * K, K);
  const auto p = mat(params + o.o, HK, E).middleRows(head * K, K);
  return wv * p;
}

std::string structure_ineligibility(const ModelConfig& model) {
  if (model.embedding()) {
    return "the model embeds its tokens (model.input_dim > 0), so the residual stream has no "
           "token slots";
  }
  if (model.embed_dim != kTokenSlots * model.data_dim) {
    return fmt::format("embed_dim {} is not 4 x data_dim {} (tokens [0, s_t, s_t, s_(t-1)])",
                       model.embed_dim, model.data_dim);
  }
  for (int l = 0; l < model.layers(); ++l) {
    if (model.mixers[size_t(l)] == MixerKind::Mesa) {
      return fmt::format("layer {} is a mesa layer (its q, k, v are not an attention's)", l);
    }
  }
  return {};
}

std::vector<LayerStructure> weight_structure(const Transformer& model, const double* params) {
  const ModelConfig& c = model.config();
  if (const std::string why = structure_ineligibility(c); !why.empty()) {
    fail("revalg: weight structure needs attention layers on constructed tokens: {}", why);
  }
  std::vector<LayerStructure> layers;
  for (int l = 0; l < c.layers(); ++l) {
    LayerStructure ls;
    ls.layer = l;
    ls.kind = c.mixers[size_t(l)];
    for (int h = 0; h < c.heads; ++h) {
      ls.heads.push_back({block_grid(head_qk(model, params, l, h), c.data_dim),
                          block_grid(head_pv(model, params, l, h), c.data_dim)});
    }
    layers.push_back(std::move(ls));
  }
  return layers;
}

std::vector<RevAlgHead> revalg_heads(const LayerStructure& layer) {
  std::vector<RevAlgHead> heads;
  for (const HeadStructure& hs : layer.heads) {
    RevAlgHead h;
    for (int a = 0; a < kTokenSlots; ++a) {
      for (int b = 0; b < kTokenSlots; ++b) h.qk[a][b] = hs.qk.blocks[a][b].scalar;
      h.pv[a] = hs.pv.blocks[a][0].scalar;
    }
    heads.push_back(h);
  }
  return heads;
}

// w[q][k][v] = sum_h (sum_{type(a)=q, type(b)=k} qk_h[a][b]) (sum_{type(c)=v} pv_h[c]);
// the zero slot (type -1) never contributes because its tokens are 0.
RevAlgCoefficients revalg_coefficients(const std::vector<RevAlgHead>& heads, bool masked_inputs) {
  const std::array<int, kTokenSlots>& type = masked_inputs ? kMaskedSlotType : kSlotType;
  RevAlgCoefficients w{};
  for (const RevAlgHead& h : heads) {
    double qk[2][2] = {{0.0, 0.0}, {0.0, 0.0}};
    double pv[2] = {0.0, 0.0};
    for (int a = 0; a < kTokenSlots; ++a) {
      if (type[a] < 0) continue;
      for (int b = 0; b < kTokenSlots; ++b)
        if (type[b] >= 0) qk[type[a]][type[b]] += h.qk[a][b];
      pv[type[a]] += h.pv[a];
    }
    for (int q = 0; q < 2; ++q)
      for (int k = 0; k < 2; ++k)
        for (int v = 0; v < 2; ++v) w[q][k][v] += qk[q][k] * pv[v];
  }
  return w;
}

std::vector<double> revalg_predictions(const RevAlgCoefficients& w, const double* states, int batch,
                                       int seq_len, int dim, double clip) {
  check_shape("revalg_predictions", batch, seq_len, dim);
  std::vector<double> preds(size_t(batch) * seq_len * dim);
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    Eigen::Map<RowMatrix<double>> out(preds.data() + size_t(b) * seq_len * dim, seq_len, dim);
    const ClosedFormFeatures f = closed_form_features(seq);
    out.setZero();
    for (int q = 0; q < 2; ++q)
      for (int k = 0; k < 2; ++k)
        for (int v = 0; v < 2; ++v) out += w[q][k][v] * f[feature_index(q, k, v)];
    if (clip > 0.0) out = out.cwiseMax(-clip).cwiseMin(clip);
  });
  return preds;
}

std::vector<double> revalg_curve(const RevAlgCoefficients& w, const double* states, int batch,
                                 int seq_len, int dim, double clip) {
  return curve_of_predictions(revalg_predictions(w, states, batch, seq_len, dim, clip), states,
                              batch, seq_len, dim);
}

RevAlgCoefficients fit_revalg_coefficients(const double* states, int batch, int seq_len, int dim) {
  check_shape("fit_revalg_coefficients", batch, seq_len, dim);
  using Normal = Eigen::Matrix<double, kClosedFormTerms, kClosedFormTerms>;
  using Vector = Eigen::Matrix<double, kClosedFormTerms, 1>;
  // Per sequence: G_mn = sum_t f_m(t) . f_n(t),  r_m = sum_t f_m(t) . s_{t+1}.
  std::vector<Normal> gram(static_cast<size_t>(batch));
  std::vector<Vector> rhs(static_cast<size_t>(batch));
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    const ClosedFormFeatures f = closed_form_features(seq);
    const auto labels = seq.bottomRows(seq_len);
    for (int m = 0; m < kClosedFormTerms; ++m) {
      rhs[size_t(b)](m) = (f[m].array() * labels.array()).sum();
      for (int n = 0; n <= m; ++n)
        gram[size_t(b)](m, n) = gram[size_t(b)](n, m) = (f[m].array() * f[n].array()).sum();
    }
  });
  Normal g = Normal::Zero();
  Vector r = Vector::Zero();
  for (int b = 0; b < batch; ++b) {
    g += gram[size_t(b)];
    r += rhs[size_t(b)];
  }
  const Eigen::LLT<Normal> llt(g);
  if (llt.info() != Eigen::Success) {
    fail(
        "fit_revalg_coefficients: the normal equations are singular ({} sequences of length {}); "
        "it needs seq_len >= 2 and non-degenerate states",
        batch, seq_len);
  }
  const Vector theta = llt.solve(r);
  RevAlgCoefficients w{};
  for (int q = 0; q < 2; ++q)
    for (int k = 0; k < 2; ++k)
      for (int v = 0; v < 2; ++v) w[q][k][v] = theta(feature_index(q, k, v));
  return w;
}

double tune_clipped_gd_eta(const double* states, int batch, int seq_len, int dim, double clip) {
  check_shape("tune_clipped_gd_eta", batch, seq_len, dim);
  const double eta0 = tune_gd_eta(states, batch, seq_len, dim);
  if (!(clip > 0.0)) return eta0;
  // g: (B, T, D) once; loss(eta) = sum |clip(eta g) - y|^2, summed in a fixed order.
  std::vector<double> g(size_t(batch) * seq_len * dim);
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    Eigen::Map<RowMatrix<double>>(g.data() + size_t(b) * seq_len * dim, seq_len, dim) =
        gd_directions(seq);
  });
  const auto loss = [&](double eta) {
    double sum = 0.0;
    for (int b = 0; b < batch; ++b) {
      const double* y = states + (size_t(b) * (seq_len + 1) + 1) * dim;
      const double* gb = g.data() + size_t(b) * seq_len * dim;
      for (size_t i = 0; i < size_t(seq_len) * dim; ++i) {
        const double diff = std::clamp(eta * gb[i], -clip, clip) - y[i];
        sum += diff * diff;
      }
    }
    return sum;
  };
  // A grid over [0, r], r = 4 eta_0, widened 4x while its best point is the last one.
  constexpr int kGrid = 80;
  constexpr int kMaxWidenings = 8;
  double step = 0.0;
  int best = 0;
  double best_loss = 0.0;
  double range = 4.0 * eta0;
  for (int widen = 0; widen <= kMaxWidenings; ++widen, range *= 4.0) {
    step = range / kGrid;
    best = 0;
    best_loss = loss(0.0);
    for (int i = 1; i <= kGrid; ++i) {
      const double l = loss(i * step);
      if (l < best_loss) {
        best_loss = l;
        best = i;
      }
    }
    if (best < kGrid) break;
  }
  // Golden-section search on [eta_{best-1}, eta_{best+1}], keeping the grid point if the
  // refinement does not improve on it.
  const double inv_phi = (std::sqrt(5.0) - 1.0) / 2.0;
  double lo = (best - 1) * step, hi = (best + 1) * step;
  double x1 = hi - inv_phi * (hi - lo), x2 = lo + inv_phi * (hi - lo);
  double l1 = loss(x1), l2 = loss(x2);
  for (int it = 0; it < 60; ++it) {
    if (l1 < l2) {
      hi = x2;
      x2 = x1;
      l2 = l1;
      x1 = hi - inv_phi * (hi - lo);
      l1 = loss(x1);
    } else {
      lo = x1;
      x1 = x2;
      l1 = l2;
      x2 = lo + inv_phi * (hi - lo);
      l2 = loss(x2);
    }
  }
  if (std::min(l1, l2) >= best_loss) return best * step;
  return l1 < l2 ? x1 : x2;
}

GdW0Fit fit_gd_w0(const double* states, int batch, int seq_len, int dim) {
  check_shape("fit_gd_w0", batch, seq_len, dim);
  // Per-sequence sufficient statistics (y_t = s_{t+1}), reduced in sequence order:
  //   S = sum_t s_t s_t^T,  X[j][d] = sum_t s_t[j] g_t[d],  R[j][d] = sum_t s_t[j] y_t[d],
  //   gg = sum_t |g_t|^2,  gy = sum_t g_t . y_t.
  struct Stats {
    Eigen::MatrixXd s, x, r;
    double gg = 0.0, gy = 0.0;
  };
  std::vector<Stats> per_seq(static_cast<size_t>(batch));
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    const RowMatrix<double> g = gd_directions(seq);
    const auto inputs = seq.topRows(seq_len);     // (T, D): s_1..s_T
    const auto labels = seq.bottomRows(seq_len);  // (T, D): s_2..s_{T+1}
    Stats& st = per_seq[size_t(b)];
    st.s = inputs.transpose() * inputs;
    st.x = inputs.transpose() * g;
    st.r = inputs.transpose() * labels;
    st.gg = g.squaredNorm();
    st.gy = (g.array() * labels.array()).sum();
  });
  Eigen::MatrixXd s = Eigen::MatrixXd::Zero(dim, dim);
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(dim, dim);
  Eigen::MatrixXd r = Eigen::MatrixXd::Zero(dim, dim);
  double gg = 0.0, gy = 0.0;
  for (const Stats& st : per_seq) {
    s += st.s;
    x += st.x;
    r += st.r;
    gg += st.gg;
    gy += st.gy;
  }
  // theta = [eta, W0[j][d] at 1 + j D + d]; pred_{t,d} = eta g_t[d] + sum_j s_t[j] W0[j][d].
  const int n = dim * dim + 1;
  Eigen::MatrixXd normal = Eigen::MatrixXd::Zero(n, n);
  Eigen::VectorXd rhs(n);
  normal(0, 0) = gg;
  rhs(0) = gy;
  for (int j = 0; j < dim; ++j) {
    for (int d = 0; d < dim; ++d) {
      const int row = 1 + j * dim + d;
      normal(0, row) = normal(row, 0) = x(j, d);
      rhs(row) = r(j, d);
      for (int j2 = 0; j2 < dim; ++j2) normal(row, 1 + j2 * dim + d) = s(j, j2);
    }
  }
  const Eigen::LLT<Eigen::MatrixXd> llt(normal);
  if (llt.info() != Eigen::Success) {
    fail(
        "fit_gd_w0: the normal equations of (eta, W0) are singular ({} sequences of length {}); "
        "it needs seq_len >= 2 and non-degenerate states",
        batch, seq_len);
  }
  const Eigen::VectorXd theta = llt.solve(rhs);
  GdW0Fit fit;
  fit.eta = theta(0);
  fit.dim = dim;
  fit.w0.assign(theta.data() + 1, theta.data() + n);
  return fit;
}

std::vector<double> gd_w0_curve(const GdW0Fit& fit, const double* states, int batch, int seq_len,
                                int dim) {
  check_shape("gd_w0_curve", batch, seq_len, dim);
  if (fit.dim != dim || fit.w0.size() != size_t(dim) * dim) {
    fail("gd_w0_curve: the fit is for D = {}, the states have D = {}", fit.dim, dim);
  }
  const Eigen::Map<const RowMatrix<double>> w0(fit.w0.data(), dim, dim);
  std::vector<double> preds(size_t(batch) * seq_len * dim);
  parallel_for(batch, [&](int b) {
    const ConstSequence seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    Eigen::Map<RowMatrix<double>> out(preds.data() + size_t(b) * seq_len * dim, seq_len, dim);
    out.noalias() = seq.topRows(seq_len) * w0;
    out += fit.eta * gd_directions(seq);
  });
  return curve_of_predictions(preds, states, batch, seq_len, dim);
}

std::string closed_form_ineligibility(const RunConfig& cfg) {
  const ModelConfig& m = cfg.model;
  if (!is_constructed(cfg.tokens)) {
    return fmt::format("the tokens are '{}', not constructed", token_format_name(cfg.tokens));
  }
  if (const std::string why = structure_ineligibility(m); !why.empty()) return why;
  if (m.layers() != 1) return fmt::format("the model has {} layers, not 1", m.layers());
  if (m.mixers[0] != MixerKind::Linear) {
    return fmt::format("its layer is '{}', not linear attention ('lsa')", mixer_name(m.mixers[0]));
  }
  if (m.layer_norm) return "it has LayerNorm (model.layer_norm)";
  if (m.mlp) return "it has an MLP (model.mlp)";
  if (m.positional_codes) return "it adds positional codes (model.positional_codes)";
  if (m.positional_codes_qk)
    return "its first block's queries and keys see positional codes (model.positional_codes_qk)";
  return {};
}

ClosedFormComparison compare_closed_form(const RunConfig& cfg, const Transformer& model,
                                         const std::vector<float>& params,
                                         const LayerStructure& layer0) {
  if (const std::string why = closed_form_ineligibility(cfg); !why.empty()) {
    fail("revalg: the closed-form comparison needs a 1-layer LSA on constructed tokens: {}", why);
  }
  const int T = cfg.data.seq_len, D = cfg.model.data_dim;
  const int count = cfg.train.test_batches, B = cfg.train.test_batch_size;
  const uint64_t seed = cfg.train.seed;
  ClosedFormComparison out;
  out.heads = revalg_heads(layer0);
  out.coefficients = revalg_coefficients(out.heads, cfg.tokens == TokenFormat::ConstructedMasked);

  const std::vector<TokenBatch> test_set = make_test_set(cfg, seed, count, B);
  BatchRunner<float> runner(model, B, T, /*forward_only=*/true);
  const std::vector<double> model_curve = per_step_loss(runner, params.data(), test_set);
  const BaselineReport baselines = run_baselines(cfg.data, seed, count, B);
  out.gd_eta = baselines.gd_eta;
  const std::vector<double> tuning =
      sample_states(cfg.data, seed, RngPurpose::Tuning, 0, kTuningBatch);
  out.gd_w0 = fit_gd_w0(tuning.data(), kTuningBatch, T, D);
  out.gd_step = fit_gd_step(tuning.data(), kTuningBatch, T, D);
  out.fitted = fit_revalg_coefficients(tuning.data(), kTuningBatch, T, D);
  const double clip = cfg.model.clip_act;
  out.gd_eta_clipped = tune_clipped_gd_eta(tuning.data(), kTuningBatch, T, D, clip);
  RevAlgCoefficients gd_clipped{};
  gd_clipped[0][1][0] = out.gd_eta_clipped;

  // Test-set averages of revalg1, revalg1_unclipped, revalg1_fitted, gd1_clipped, gd_w0,
  // gd_step_w0.
  std::array<std::vector<double>, 6> ours;
  for (std::vector<double>& c : ours) c.assign(size_t(T), 0.0);
  for (const TokenBatch& b : test_set) {
    const double* s = b.states.data();
    const std::vector<double> batch_curves[] = {revalg_curve(out.coefficients, s, B, T, D, clip),
                                                revalg_curve(out.coefficients, s, B, T, D, 0.0),
                                                revalg_curve(out.fitted, s, B, T, D, clip),
                                                revalg_curve(gd_clipped, s, B, T, D, clip),
                                                gd_w0_curve(out.gd_w0, s, B, T, D),
                                                gd_step_curve(out.gd_step, s, B, T, D)};
    for (size_t i = 0; i < ours.size(); ++i)
      for (int t = 0; t < T; ++t) ours[i][size_t(t)] += batch_curves[i][size_t(t)] / count;
  }
  const auto baseline = [&](const std::string& name) {
    for (const auto& [n, curve] : baselines.curves)
      if (n == name) return curve;
    fail("revalg: baseline '{}' missing", name);
  };
  out.curves = {{"model", model_curve},
                {"revalg1", ours[0]},
                {"revalg1_unclipped", ours[1]},
                {"revalg1_fitted", ours[2]},
                {"gd1", baseline("gd1")},
                {"gd1_clipped", ours[3]},
                {"gd_w0", ours[4]},
                {"gd_step_w0", ours[5]},
                {"least_squares", baseline("least_squares")},
                {"least_squares_all_pairs", baseline("least_squares_all_pairs")},
                {"zero", baseline("zero")},
                {"copy", baseline("copy")}};
  return out;
}

RevAlgReport analyse_revalg(const RunConfig& cfg, const std::vector<float>& params) {
  if (!is_constructed(cfg.tokens)) {
    fail("revalg: the run uses '{}' tokens; the slot analysis needs constructed tokens",
         token_format_name(cfg.tokens));
  }
  const Transformer model(cfg.model);
  if (params.size() != model.num_params()) {
    fail("revalg: {} parameters given, the model has {}", params.size(), model.num_params());
  }
  const std::vector<double> params_d(params.begin(), params.end());
  RevAlgReport report;
  report.structure = weight_structure(model, params_d.data());
  report.comparison_note = closed_form_ineligibility(cfg);
  if (report.comparison_note.empty()) {
    report.comparison = compare_closed_form(cfg, model, params, report.structure[0]);
    report.has_comparison = true;
  } else {
    report.comparison_note = "no closed-form comparison: " + report.comparison_note;
  }
  return report;
}

nlohmann::json revalg_report_json(const RevAlgReport& report, int data_dim) {
  nlohmann::json structure = nlohmann::json::array();
  for (const LayerStructure& ls : report.structure) {
    nlohmann::json heads = nlohmann::json::array();
    for (const HeadStructure& hs : ls.heads)
      heads.push_back({{"qk", grid_json(hs.qk)}, {"pv", grid_json(hs.pv)}});
    structure.push_back(
        {{"layer", ls.layer}, {"kind", std::string(mixer_name(ls.kind))}, {"heads", heads}});
  }
  nlohmann::json j = {{"data_dim", data_dim},
                      {"structure", structure},
                      {"closed_form", nullptr},
                      {"closed_form_note", report.comparison_note}};
  if (!report.has_comparison) return j;
  const ClosedFormComparison& c = report.comparison;
  nlohmann::json heads = nlohmann::json::array();
  for (const RevAlgHead& h : c.heads) heads.push_back({{"qk", h.qk}, {"pv", h.pv}});
  nlohmann::json coefficients = nlohmann::json::array();
  for (int q = 0; q < 2; ++q)
    for (int k = 0; k < 2; ++k)
      for (int v = 0; v < 2; ++v)
        coefficients.push_back({{"query", state_name(q, true)},
                                {"key", state_name(k, false)},
                                {"value", state_name(v, false)},
                                {"w", c.coefficients[q][k][v]},
                                {"w_fitted", c.fitted[q][k][v]}});
  auto rows = [](const std::vector<double>& m, int dim) {
    nlohmann::json out = nlohmann::json::array();
    for (int r = 0; r < dim; ++r)
      out.push_back(std::vector<double>(m.begin() + r * dim, m.begin() + (r + 1) * dim));
    return out;
  };
  nlohmann::json losses, curves;
  for (const auto& [name, curve] : c.curves) {
    losses[name] = curve_mean(curve);
    curves[name] = curve;
  }
  j["closed_form"] = {
      {"heads", heads},
      {"coefficients", coefficients},
      {"gd_eta", c.gd_eta},
      {"gd_eta_clipped", c.gd_eta_clipped},
      {"gd_w0", {{"eta", c.gd_w0.eta}, {"w0", rows(c.gd_w0.w0, c.gd_w0.dim)}}},
      {"gd_step", {{"eta", c.gd_step.eta}, {"w0", rows(c.gd_step.w0, c.gd_step.dim)}}},
      {"losses", losses},
      {"curves", curves}};
  return j;
}

}  // namespace mesalab
