#include "analysis/probes.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/stats.hpp"
#include "model/batch_runner.hpp"

namespace mesalab {

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRows = Eigen::Map<const RowMatrix>;

void check_batch(const TokenBatch& b) {
  if (b.batch < 1 || b.seq_len < 1 || b.dim < 1)
    fail("probes: batch, seq_len and dim must be >= 1, got {}, {}, {}", b.batch, b.seq_len, b.dim);
  if (b.states.size() != size_t(b.batch) * (b.seq_len + 1) * b.dim)
    fail("probes: states hold {} values, expected (B, T+1, D) = ({}, {}, {})", b.states.size(),
         b.batch, b.seq_len + 1, b.dim);
}

// Copies rows with keep[b] != 0 of a (rows, cols) row-major matrix (all rows if keep is null).
RowMatrix kept_rows(const double* m, int rows, int cols, const std::vector<char>* keep) {
  const ConstRows full(m, rows, cols);
  if (keep == nullptr) return full;
  const auto n = std::count_if(keep->begin(), keep->end(), [](char k) { return k != 0; });
  RowMatrix out(n, cols);
  Eigen::Index r = 0;
  for (int b = 0; b < rows; ++b)
    if ((*keep)[size_t(b)] != 0) out.row(r++) = full.row(b);
  return out;
}

// Index of (t, layer) in a (T, L+1) row-major result matrix.
size_t result_index(int t, int layer, int layers) { return size_t(t) * (layers + 1) + layer; }

}  // namespace

std::string_view probe_target_name(ProbeTarget target) {
  switch (target) {
    case ProbeTarget::Current:
      return "current";
    case ProbeTarget::Next:
      return "next";
    case ProbeTarget::InverseCurrent:
      return "inverse";
    case ProbeTarget::Implicit:
      return "implicit";
    case ProbeTarget::Features:
      return "features";
  }
  return "?";
}

ProbeTarget parse_probe_target(std::string_view name) {
  for (ProbeTarget t : {ProbeTarget::Current, ProbeTarget::Next, ProbeTarget::InverseCurrent,
                        ProbeTarget::Implicit, ProbeTarget::Features})
    if (name == probe_target_name(t)) return t;
  fail("unknown probe target '{}' (allowed: current, next, inverse, implicit, features)", name);
}

std::vector<ProbeTarget> parse_probe_targets(std::string_view name, const DataConfig& data) {
  if (name != "all") {
    for (ProbeTarget t : {ProbeTarget::Current, ProbeTarget::Next, ProbeTarget::InverseCurrent,
                          ProbeTarget::Implicit, ProbeTarget::Features})
      if (name == probe_target_name(t)) return {t};
    fail("unknown probe target '{}' (allowed: current, next, inverse, implicit, features, all)",
         name);
  }
  std::vector<ProbeTarget> all = {ProbeTarget::Current, ProbeTarget::Next,
                                  ProbeTarget::InverseCurrent};
  if (data.kind == DynamicsKind::Nonlinear) all.push_back(ProbeTarget::Features);
  return all;
}

NonlinearFeatures probe_features(const DataConfig& data) {
  return data.kind == DynamicsKind::Nonlinear ? nonlinear_features(data) : NonlinearFeatures{};
}

void ProbeOptions::validate() const {
  if (!(lambda > 0.0) || !std::isfinite(lambda))
    fail("probe lambda must be finite and > 0, got {}", lambda);
  if (!(outlier_z > 0.0)) fail("probe outlier z-score threshold must be > 0, got {}", outlier_z);
}

// A_{t,l}[b, :] = x_l[b, t, :], from the BatchRunner's chunked forward. Chunks are fixed by
// the batch alone and each writes its own sequences, so the values do not depend on the
// thread count.
LayerActivations collect_activations(const Transformer& model, const float* params,
                                     const TokenBatch& batch) {
  check_batch(batch);
  const ModelConfig& c = model.config();
  const int B = batch.batch, T = batch.seq_len, W = batch.width, D = c.data_dim;
  const int L = c.layers(), E = c.embed_dim;
  if (W != c.token_dim() || batch.tokens.size() != size_t(B) * T * W)
    fail("probes: tokens are {} wide ({} values), the model takes {}-wide tokens", W,
         batch.tokens.size(), c.token_dim());
  if (batch.labels.size() != size_t(B) * T * D)
    fail("probes: labels hold {} values, the model predicts (B, T, D) = ({}, {}, {})",
         batch.labels.size(), B, T, D);

  LayerActivations acts;
  acts.batch = B;
  acts.seq_len = T;
  acts.layers = L;
  acts.width = E;
  acts.values.resize(size_t(L + 1) * T * B * E);
  BatchRunner<float> runner(model, B, T, /*forward_only=*/true);
  runner.forward_chunks(
      params, batch.tokens.data(), [&](int first, int count, const Workspace<float>& ws) {
        for (int l = 0; l <= L; ++l) {
          // x_l: the input of layer l, or the output of the last layer.
          const float* x = l < L ? ws.layer(l).input : ws.layer(L - 1).output;
          for (int b = 0; b < count; ++b)
            for (int t = 0; t < T; ++t) {
              const float* src = x + (size_t(b) * T + t) * E;
              double* dst = acts.values.data() + ((size_t(l) * T + t) * B + size_t(first + b)) * E;
              std::copy(src, src + E, dst);
            }
        }
      });
  return acts;
}

// Per sequence: G_0 = 0; y_t = LLT(G_t + lambda I).solve(u_t); G_{t+1} = G_t + u_t u_t^T.
// G_t + lambda I is symmetric positive definite for lambda > 0, so Cholesky applies.
std::vector<double> preconditioned_inputs(const double* states, int batch, int seq_len, int dim,
                                          double lambda) {
  if (batch < 1 || seq_len < 1 || dim < 1)
    fail("preconditioned_inputs: batch, seq_len and dim must be >= 1, got {}, {}, {}", batch,
         seq_len, dim);
  if (!(lambda > 0.0) || !std::isfinite(lambda))
    fail("preconditioned_inputs: lambda must be finite and > 0, got {}", lambda);
  std::vector<double> out(size_t(seq_len) * batch * dim);
  parallel_for(batch, [&](int b) {
    const ConstRows seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(dim, dim);
    Eigen::LLT<Eigen::MatrixXd> llt(dim);
    const Eigen::MatrixXd lambda_eye = lambda * Eigen::MatrixXd::Identity(dim, dim);
    for (int t = 0; t < seq_len; ++t) {
      const Eigen::VectorXd u = seq.row(t).transpose();
      llt.compute(gram + lambda_eye);
      Eigen::Map<Eigen::VectorXd>(out.data() + (size_t(t) * batch + b) * dim, dim) = llt.solve(u);
      gram.noalias() += u * u.transpose();
    }
  });
  return out;
}

std::vector<double> probe_targets(ProbeTarget target, const TokenBatch& batch,
                                  const ProbeOptions& options) {
  check_batch(batch);
  const int B = batch.batch, T = batch.seq_len, D = batch.dim;
  if (target == ProbeTarget::InverseCurrent || target == ProbeTarget::Implicit)
    return preconditioned_inputs(batch.states.data(), B, T, D, options.lambda);
  const bool features = target == ProbeTarget::Features;
  if (features && options.features.dim != D)
    fail(
        "the features probe needs the nonlinear data's feature map (data.kind = nonlinear) of "
        "the batch's dimension {}{}",
        D,
        options.features.dim > 0 ? fmt::format(", got one of dimension {}", options.features.dim)
                                 : std::string());
  const int shift = target == ProbeTarget::Next ? 1 : 0;
  std::vector<double> y(size_t(T) * B * D);
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) {
      const double* src = batch.states.data() + (size_t(b) * (T + 1) + t + shift) * D;
      double* dst = y.data() + (size_t(t) * B + b) * D;
      if (features)
        nonlinear_feature_map(options.features, src, nullptr, dst);
      else
        std::copy(src, src + D, dst);
    }
  return y;
}

// Per sequence: C_0 = 0, C_{t+1} = C_t + u_t u_{t+1}^T.
std::vector<double> cross_sums(const TokenBatch& batch) {
  check_batch(batch);
  const int B = batch.batch, T = batch.seq_len, D = batch.dim;
  std::vector<double> out(size_t(T) * B * D * D);
  parallel_for(B, [&](int b) {
    const ConstRows seq(batch.states.data() + size_t(b) * (T + 1) * D, T + 1, D);
    RowMatrix c = RowMatrix::Zero(D, D);
    for (int t = 0; t < T; ++t) {
      Eigen::Map<RowMatrix>(out.data() + (size_t(t) * B + b) * D * D, D, D) = c;
      c.noalias() += seq.row(t).transpose() * seq.row(t + 1);
    }
  });
  return out;
}

namespace {

// The rows' predictions s_hat_b = scale x_b^T C_b against s_{t+1}: plain MSE over the kept
// rows and dims, and R^2. x, next: (rows, D); cross: (rows, D, D).
ProbeFit score_cross_prediction(const double* x, const double* cross, const double* next, int rows,
                                int dim, double scale, const std::vector<char>* keep) {
  double sse = 0.0;
  int n = 0;
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(dim);
  for (int b = 0; b < rows; ++b) {
    if (keep != nullptr && (*keep)[size_t(b)] == 0) continue;
    const Eigen::Map<const Eigen::RowVectorXd> xb(x + size_t(b) * dim, dim),
        yb(next + size_t(b) * dim, dim);
    const Eigen::RowVectorXd pred = scale * xb * ConstRows(cross + size_t(b) * dim * dim, dim, dim);
    sse += (pred - yb).squaredNorm();
    mean += yb.transpose();
    ++n;
  }
  if (n == 0) fail("implicit probe: no rows left");
  mean /= n;
  double sst = 0.0;
  for (int b = 0; b < rows; ++b)
    if (keep == nullptr || (*keep)[size_t(b)] != 0)
      sst += (Eigen::Map<const Eigen::VectorXd>(next + size_t(b) * dim, dim) - mean).squaredNorm();
  return {sse / (double(n) * dim), sst > 0.0 ? 1.0 - sse / sst : std::nan(""), n};
}

// keep_b = 0 if any entry of y_b >= limit (the official clean_target_probe).
std::vector<char> clean_keep_mask(const double* y, int rows, int dim, double limit) {
  std::vector<char> keep(size_t(rows), 1);
  for (int b = 0; b < rows; ++b)
    for (int d = 0; d < dim; ++d)
      if (y[size_t(b) * dim + d] >= limit) keep[size_t(b)] = 0;
  return keep;
}

}  // namespace

// n_b = |y_b|,  z_b = (n_b - mean n) / std n  (population std).
std::vector<char> outlier_keep_mask(const double* y, int rows, int dim, double z_threshold) {
  std::vector<char> keep(size_t(rows), 1);
  if (std::isinf(z_threshold) && z_threshold > 0.0) return keep;
  const Eigen::VectorXd norms = ConstRows(y, rows, dim).rowwise().norm();
  const double mean = norms.mean();
  const double sd = std::sqrt((norms.array() - mean).square().mean());
  if (!(sd > 0.0)) return keep;
  for (int b = 0; b < rows; ++b)
    if ((norms(b) - mean) / sd >= z_threshold) keep[size_t(b)] = 0;
  return keep;
}

std::vector<double> least_squares_probe(const double* a, const double* y, int rows, int in_dim,
                                        int out_dim) {
  if (rows < 1 || in_dim < 1 || out_dim < 1)
    fail("least_squares_probe: rows, in_dim and out_dim must be >= 1, got {}, {}, {}", rows, in_dim,
         out_dim);
  const Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(ConstRows(a, rows, in_dim));
  const RowMatrix p = cod.solve(Eigen::MatrixXd(ConstRows(y, rows, out_dim)));
  return {p.data(), p.data() + p.size()};
}

// With A, Y the kept rows (n of them): P = least_squares_probe(A, Y), R = A P - Y,
// loss = |R|_F^2 / (2n), r2 = 1 - |R|_F^2 / |Y - 1 mean(Y)|_F^2.
ProbeFit fit_probe(const double* a, const double* y, int rows, int in_dim, int out_dim,
                   const std::vector<char>* keep) {
  return fit_and_score_probe({a, y, rows, keep}, {a, y, rows, keep}, in_dim, out_dim);
}

ProbeFit fit_and_score_probe(const ProbeRows& fit_rows, const ProbeRows& score_rows, int in_dim,
                             int out_dim) {
  auto kept = [&](const ProbeRows& r, const char* what) {
    if (r.keep != nullptr && r.keep->size() != size_t(r.rows))
      fail("fit_probe: the {} keep mask has {} entries for {} rows", what, r.keep->size(), r.rows);
    std::pair<RowMatrix, RowMatrix> m = {kept_rows(r.a, r.rows, in_dim, r.keep),
                                         kept_rows(r.y, r.rows, out_dim, r.keep)};
    if (m.first.rows() < 1) fail("fit_probe: no {} rows left", what);
    return m;
  };
  const auto [af, yf] = kept(fit_rows, "fit");
  const std::vector<double> p =
      least_squares_probe(af.data(), yf.data(), int(af.rows()), in_dim, out_dim);
  const bool same = fit_rows.a == score_rows.a && fit_rows.y == score_rows.y &&
                    fit_rows.rows == score_rows.rows && fit_rows.keep == score_rows.keep;
  const auto [as, ys] = same ? std::pair<RowMatrix, RowMatrix>{af, yf} : kept(score_rows, "score");
  const RowMatrix residual = as * ConstRows(p.data(), in_dim, out_dim) - ys;
  const double sse = residual.squaredNorm();
  const double sst = (ys.rowwise() - ys.colwise().mean()).squaredNorm();
  ProbeFit fit;
  fit.kept = int(as.rows());
  fit.loss = sse / (2.0 * fit.kept);
  fit.r2 = sst > 0.0 ? 1.0 - sse / sst : std::nan("");
  return fit;
}

ProbeResult run_probe(const LayerActivations& acts, const TokenBatch& batch, ProbeTarget target,
                      const ProbeOptions& options) {
  return run_held_out_probe(acts, batch, acts, batch, target, options);
}

ProbeResult run_held_out_probe(const LayerActivations& fit_acts, const TokenBatch& fit_batch,
                               const LayerActivations& score_acts, const TokenBatch& score_batch,
                               ProbeTarget target, const ProbeOptions& options) {
  options.validate();
  for (const auto& [acts, batch] :
       {std::pair{&fit_acts, &fit_batch}, {&score_acts, &score_batch}}) {
    check_batch(*batch);
    if (acts->batch != batch->batch || acts->seq_len != batch->seq_len)
      fail("run_probe: activations are for (B, T) = ({}, {}), the batch is ({}, {})", acts->batch,
           acts->seq_len, batch->batch, batch->seq_len);
  }
  if (fit_acts.seq_len != score_acts.seq_len || fit_acts.layers != score_acts.layers ||
      fit_acts.width != score_acts.width || fit_batch.dim != score_batch.dim)
    fail("run_probe: the fit and score batches come from different models or data shapes");
  const bool held_out = &fit_acts != &score_acts;
  const int T = fit_batch.seq_len, D = fit_batch.dim, L = fit_acts.layers;
  const int Bf = fit_batch.batch, Bs = score_batch.batch;
  const std::vector<double> yf = probe_targets(target, fit_batch, options);
  const std::vector<double> ys = held_out ? probe_targets(target, score_batch, options) : yf;
  ProbeResult r;
  r.target = target;
  r.layers = L;
  r.seq_len = T;
  r.loss.resize(size_t(T) * (L + 1));
  r.r2.resize(r.loss.size());
  r.kept.resize(size_t(T));
  const bool implicit = target == ProbeTarget::Implicit;
  const double z = target == ProbeTarget::InverseCurrent || implicit
                       ? options.outlier_z
                       : std::numeric_limits<double>::infinity();
  const bool clean = target == ProbeTarget::Next && options.clean_target;
  // The implicit target scores s_hat = 0.5 p^T C_t against s_{t+1} of the scored batch.
  const std::vector<double> cross = implicit ? cross_sums(score_batch) : std::vector<double>();
  const std::vector<double> next =
      implicit ? probe_targets(ProbeTarget::Next, score_batch, options) : std::vector<double>();
  auto keep_mask = [&](const double* y, int rows) {
    std::vector<char> keep = outlier_keep_mask(y, rows, D, z);
    if (clean) {
      const std::vector<char> kept = clean_keep_mask(y, rows, D, kCleanTargetLimit);
      for (size_t b = 0; b < keep.size(); ++b) keep[b] = keep[b] && kept[b];
    }
    return keep;
  };
  parallel_for(T, [&](int t) {
    const double* yf_t = yf.data() + size_t(t) * Bf * D;
    const double* ys_t = ys.data() + size_t(t) * Bs * D;
    const std::vector<char> keep_f = keep_mask(yf_t, Bf);
    const std::vector<char> keep_s = held_out ? keep_mask(ys_t, Bs) : keep_f;
    const std::vector<char>* score_keep = held_out ? &keep_s : &keep_f;  // same rows: one gather
    for (int l = 0; l <= L; ++l) {
      const int E = fit_acts.width;
      ProbeFit f;
      if (implicit) {
        const RowMatrix af = kept_rows(fit_acts.at(l, t), Bf, E, &keep_f);
        const RowMatrix p_fit = kept_rows(yf_t, Bf, D, &keep_f);
        const std::vector<double> p =
            least_squares_probe(af.data(), p_fit.data(), int(af.rows()), E, D);
        const RowMatrix pred = ConstRows(score_acts.at(l, t), Bs, E) * ConstRows(p.data(), E, D);
        f = score_cross_prediction(pred.data(), cross.data() + size_t(t) * Bs * D * D,
                                   next.data() + size_t(t) * Bs * D, Bs, D, kImplicitScale,
                                   score_keep);
      } else {
        f = fit_and_score_probe({fit_acts.at(l, t), yf_t, Bf, &keep_f},
                                {score_acts.at(l, t), ys_t, Bs, score_keep}, E, D);
      }
      r.loss[result_index(t, l, L)] = f.loss;
      r.r2[result_index(t, l, L)] = f.r2;
      r.kept[size_t(t)] = f.kept;
    }
  });
  return r;
}

ControlResult implicit_reference(const TokenBatch& batch) {
  check_batch(batch);
  const int B = batch.batch, T = batch.seq_len, D = batch.dim;
  const std::vector<double> u = probe_targets(ProbeTarget::Current, batch, {});
  const std::vector<double> next = probe_targets(ProbeTarget::Next, batch, {});
  const std::vector<double> cross = cross_sums(batch);
  ControlResult r;
  r.loss.resize(size_t(T));
  r.r2.resize(size_t(T));
  r.kept.resize(size_t(T));
  parallel_for(T, [&](int t) {
    const size_t at = size_t(t) * B * D;
    const ProbeFit f =
        score_cross_prediction(u.data() + at, cross.data() + at * D, next.data() + at, B, D,
                               kImplicitReferenceScale, nullptr);
    r.loss[size_t(t)] = f.loss;
    r.r2[size_t(t)] = f.r2;
    r.kept[size_t(t)] = f.kept;
  });
  return r;
}

ControlResult control_probe(const TokenBatch& batch, const ProbeOptions& options) {
  options.validate();
  check_batch(batch);
  const int B = batch.batch, T = batch.seq_len, D = batch.dim;
  const std::vector<double> x = probe_targets(ProbeTarget::InverseCurrent, batch, options);
  const std::vector<double> y = probe_targets(ProbeTarget::Next, batch, options);
  ControlResult r;
  r.loss.resize(size_t(T));
  r.r2.resize(size_t(T));
  r.kept.resize(size_t(T));
  parallel_for(T, [&](int t) {
    const double* x_t = x.data() + size_t(t) * B * D;
    const std::vector<char> keep = outlier_keep_mask(x_t, B, D, options.outlier_z);
    const ProbeFit f = fit_probe(x_t, y.data() + size_t(t) * B * D, B, D, D, &keep);
    r.loss[size_t(t)] = f.loss;
    r.r2[size_t(t)] = f.r2;
    r.kept[size_t(t)] = f.kept;
  });
  return r;
}

std::string probes_csv(const std::vector<ProbeResult>& results, const ControlResult* control) {
  std::string csv = "target,layer,t,loss,r2\n";
  for (const ProbeResult& r : results)
    for (int l = 0; l <= r.layers; ++l)
      for (int t = 0; t < r.seq_len; ++t)
        csv += fmt::format("{},{},{},{:.8g},{:.8g}\n", probe_target_name(r.target), l, t + 1,
                           r.loss_at(t, l), r.r2_at(t, l));
  if (control != nullptr)
    for (size_t t = 0; t < control->loss.size(); ++t)
      csv += fmt::format("control,,{},{:.8g},{:.8g}\n", t + 1, control->loss[t], control->r2[t]);
  return csv;
}

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (double x : v) out.push_back(number(x));
  return out;
}

// Rows t = 0..T-1 of a (T, L+1) matrix.
nlohmann::json table(const std::vector<double>& m, int seq_len, int layers) {
  nlohmann::json out = nlohmann::json::array();
  for (int t = 0; t < seq_len; ++t) {
    const auto row = m.begin() + std::ptrdiff_t(result_index(t, 0, layers));
    out.push_back(numbers(std::vector<double>(row, row + layers + 1)));
  }
  return out;
}

}  // namespace

nlohmann::json probes_json(const std::vector<ProbeResult>& results, const ControlResult* control) {
  nlohmann::json out = nlohmann::json::object();
  nlohmann::json probes = nlohmann::json::object();
  for (const ProbeResult& r : results) {
    out["seq_len"] = r.seq_len;
    out["layers"] = r.layers;
    std::vector<double> mean_loss;
    for (int l = 0; l <= r.layers; ++l) {
      std::vector<double> curve;
      for (int t = 0; t < r.seq_len; ++t) curve.push_back(r.loss_at(t, l));
      mean_loss.push_back(curve_mean(curve));
    }
    probes[std::string(probe_target_name(r.target))] = {
        {"loss", table(r.loss, r.seq_len, r.layers)},
        {"r2", table(r.r2, r.seq_len, r.layers)},
        {"kept", r.kept},
        {"mean_loss", numbers(mean_loss)}};
  }
  out["probes"] = probes;
  if (control != nullptr)
    out["control"] = {
        {"loss", numbers(control->loss)}, {"r2", numbers(control->r2)}, {"kept", control->kept}};
  return out;
}

}  // namespace mesalab
