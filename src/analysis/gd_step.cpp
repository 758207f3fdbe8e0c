#include "analysis/gd_step.hpp"

#include <Eigen/Dense>
#include <cmath>
#include <limits>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"

namespace mesalab {

namespace {

using Matrix = Eigen::MatrixXd;
using ConstSeq = Eigen::Map<const RowMatrix<double>>;

void check_shape(const char* what, int batch, int seq_len, int dim) {
  if (batch < 1 || seq_len < 1 || dim < 1)
    fail("{}: batch, seq_len and dim must be >= 1, got {}, {}, {}", what, batch, seq_len, dim);
}

// For one sequence, rows t = 1..T (row t-1): a_t^T = s_t^T C_pp(t) and g_t^T = s_t^T C_ps(t).
void step_directions(const ConstSeq& seq, RowMatrix<double>& a, RowMatrix<double>& g) {
  const int T = int(seq.rows()) - 1, D = int(seq.cols());
  a.resize(T, D);
  g.resize(T, D);
  Matrix pp = Matrix::Zero(D, D), ps = Matrix::Zero(D, D);
  for (int k = 0; k < T; ++k) {
    if (k > 0) {
      pp.noalias() += seq.row(k - 1).transpose() * seq.row(k - 1);
      ps.noalias() += seq.row(k - 1).transpose() * seq.row(k);
    }
    a.row(k).noalias() = seq.row(k) * pp;
    g.row(k).noalias() = seq.row(k) * ps;
  }
}

// With z = s - eta a (rows) and y' = y - eta g: Z^T Z, Z^T Y', |Y'|^2 are quadratics in eta
// in these sums over (b, t), reduced in sequence order.
struct StepStats {
  Matrix ss, sa, aa, sy, ay, sg, ag;
  double yy = 0.0, gy = 0.0, gg = 0.0;
  explicit StepStats(int d)
      : ss(Matrix::Zero(d, d)), sa(ss), aa(ss), sy(ss), ay(ss), sg(ss), ag(ss) {}
  void add(const StepStats& o) {
    ss += o.ss, sa += o.sa, aa += o.aa, sy += o.sy, ay += o.ay, sg += o.sg, ag += o.ag;
    yy += o.yy, gy += o.gy, gg += o.gg;
  }
};

StepStats step_stats(const double* states, int batch, int seq_len, int dim) {
  std::vector<StepStats> per_seq(size_t(batch), StepStats{dim});
  parallel_for(batch, [&](int b) {
    const ConstSeq seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    RowMatrix<double> a, g;
    step_directions(seq, a, g);
    const auto s = seq.topRows(seq_len), y = seq.bottomRows(seq_len);
    StepStats& st = per_seq[size_t(b)];
    st.ss = s.transpose() * s;
    st.sa = s.transpose() * a;
    st.aa = a.transpose() * a;
    st.sy = s.transpose() * y;
    st.ay = a.transpose() * y;
    st.sg = s.transpose() * g;
    st.ag = a.transpose() * g;
    st.yy = y.squaredNorm();
    st.gy = (g.array() * y.array()).sum();
    st.gg = g.squaredNorm();
  });
  StepStats total(dim);
  for (const StepStats& st : per_seq) total.add(st);
  return total;
}

// W0(eta) = (Z^T Z)^{-1} Z^T Y' and the loss |Y' - Z W0|^2 / (2 B T) = (|Y'|^2 - tr(B^T W0))
// / (2 B T); +inf if Z^T Z is singular.
GdStepFit profile(const StepStats& st, double eta, int dim, double rows) {
  const Matrix zz = st.ss - eta * (st.sa + st.sa.transpose()) + eta * eta * st.aa;
  const Matrix zy = st.sy - eta * (st.ay + st.sg) + eta * eta * st.ag;
  const double yy = st.yy - 2.0 * eta * st.gy + eta * eta * st.gg;
  GdStepFit fit;
  fit.eta = eta;
  fit.dim = dim;
  const Eigen::LLT<Matrix> llt(zz);
  if (llt.info() != Eigen::Success) {
    fit.loss = std::numeric_limits<double>::infinity();
    return fit;
  }
  const RowMatrix<double> w0 = llt.solve(zy);
  fit.w0.assign(w0.data(), w0.data() + w0.size());
  fit.loss = std::max(0.0, yy - (zy.array() * w0.array()).sum()) / (2.0 * rows);
  return fit;
}

}  // namespace

GdStepFit fit_gd_step_at(const double* states, int batch, int seq_len, int dim, double eta) {
  check_shape("fit_gd_step_at", batch, seq_len, dim);
  return profile(step_stats(states, batch, seq_len, dim), eta, dim, double(batch) * seq_len);
}

GdStepFit fit_gd_step(const double* states, int batch, int seq_len, int dim) {
  check_shape("fit_gd_step", batch, seq_len, dim);
  const StepStats st = step_stats(states, batch, seq_len, dim);
  const double rows = double(batch) * seq_len;
  auto at = [&](double eta) { return profile(st, eta, dim, rows); };
  if (!(st.gg > 0.0))
    fail("fit_gd_step: no GD direction ({} sequences of length {}); it needs seq_len >= 2", batch,
         seq_len);
  const double eta0 = st.gy / st.gg;
  double scale = std::abs(eta0) > 0.0 ? std::abs(eta0) : 1.0;
  constexpr int kGrid = 100;
  double lo = 0.0, hi = 0.0, best_eta = 0.0;
  GdStepFit best;
  for (int widen = 0; widen <= 8; ++widen, scale *= 4.0) {
    lo = -scale;
    hi = 4.0 * scale;
    best.loss = std::numeric_limits<double>::infinity();
    int best_i = 0;
    for (int i = 0; i <= kGrid; ++i) {
      const GdStepFit f = at(lo + (hi - lo) * i / kGrid);
      if (f.loss < best.loss) best = f, best_i = i;
    }
    best_eta = best.eta;
    if (best_i != 0 && best_i != kGrid) break;
  }
  if (!std::isfinite(best.loss))
    fail(
        "fit_gd_step: the normal equations of W0 are singular at every eta ({} sequences of "
        "length {})",
        batch, seq_len);
  // Golden-section search in the bracket around the best grid point.
  const double h = (hi - lo) / kGrid, inv_phi = (std::sqrt(5.0) - 1.0) / 2.0;
  double a = best_eta - h, b = best_eta + h;
  double x1 = b - inv_phi * (b - a), x2 = a + inv_phi * (b - a);
  GdStepFit f1 = at(x1), f2 = at(x2);
  for (int it = 0; it < 80; ++it) {
    if (f1.loss < f2.loss) {
      b = x2, x2 = x1, f2 = f1;
      x1 = b - inv_phi * (b - a);
      f1 = at(x1);
    } else {
      a = x1, x1 = x2, f1 = f2;
      x2 = a + inv_phi * (b - a);
      f2 = at(x2);
    }
  }
  const GdStepFit& refined = f1.loss < f2.loss ? f1 : f2;
  return refined.loss < best.loss ? refined : best;
}

std::vector<double> gd_step_curve(const GdStepFit& fit, const double* states, int batch,
                                  int seq_len, int dim) {
  check_shape("gd_step_curve", batch, seq_len, dim);
  if (fit.dim != dim || fit.w0.size() != size_t(dim) * dim)
    fail("gd_step_curve: the fit is for D = {}, the states have D = {}", fit.dim, dim);
  const ConstSeq w0(fit.w0.data(), dim, dim);
  std::vector<std::vector<double>> per_seq(size_t(batch),
                                           std::vector<double>(size_t(seq_len), 0.0));
  parallel_for(batch, [&](int b) {
    const ConstSeq seq(states + size_t(b) * (seq_len + 1) * dim, seq_len + 1, dim);
    RowMatrix<double> a, g;
    step_directions(seq, a, g);
    const RowMatrix<double> pred =
        (seq.topRows(seq_len) - fit.eta * a) * w0 + fit.eta * g - seq.bottomRows(seq_len);
    for (int t = 0; t < seq_len; ++t) per_seq[size_t(b)][size_t(t)] = pred.row(t).squaredNorm();
  });
  std::vector<double> curve(size_t(seq_len), 0.0);
  for (const auto& errs : per_seq)
    for (int t = 0; t < seq_len; ++t) curve[size_t(t)] += errs[size_t(t)] / (2.0 * batch);
  return curve;
}

}  // namespace mesalab
