#include "model/mesa_attention.hpp"

#include <cmath>
#include <utility>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"

namespace mesalab {
namespace {

// Added to every norm before dividing, as in the official code (SchlagNorm and
// normalization_mesa both use x / (||x|| + 1e-16)).
constexpr double kNormEps = 1e-16;

enum class Variant { Reverse, StoredR, StoredV };
constexpr Variant kVariant = Variant::StoredR;

// Per (b, h) the cache holds, in this order:
//   P  (T, K)  p_t = R_t q_t
//   V  (T, K)  v_t = R_{t-1} x_t / sqrt(1 + x_t^T R_{t-1} x_t), so R_t = R_{t-1} - v_t v_t^T
//   Qn (T, K)  queries after SchlagNorm (unused without it)
//   Yn (T, K)  targets after SchlagNorm (unused without it)
//   L  (T, T)  raw causal logits L[t,i] = p_t . x_i (i <= t), 0 above the diagonal
//   norms (4T) ||q_t||, ||y_t||, ||x_t||, ||L[t,:]||
//   R  (K, K)  R_T
// followed by one (T, K) buffer shared by all heads for the head-major -> head-minor copy.
struct CacheLayout {
  size_t tk, tt, T;
  size_t p, v, qn, yn, logits, norms, r, head_block;
  explicit CacheLayout(const AttentionShape& s)
      : tk(size_t(s.seq_len) * s.key_size), tt(size_t(s.seq_len) * s.seq_len), T(s.seq_len) {
    p = 0;
    v = p + tk;
    qn = v + tk;
    yn = qn + tk;
    logits = yn + tk;
    norms = logits + tt;
    r = norms + 4 * T;
    const size_t kk = size_t(s.key_size) * s.key_size;
    head_block = r + (kVariant == Variant::StoredR ? T * kk : kk);
  }
};

// Scratch of the backward pass (one (b, h) at a time).
struct ScratchLayout {
  size_t d_out, dp, dq, dy, dl, m, r, w, total;
  explicit ScratchLayout(const AttentionShape& s) {
    const size_t tk = size_t(s.seq_len) * s.key_size, tt = size_t(s.seq_len) * s.seq_len;
    d_out = 0;
    dp = d_out + tk;
    dq = dp + tk;
    dy = dq + tk;
    dl = dy + tk;
    m = dl + tt;
    r = m + tt;
    w = r + size_t(s.key_size) * s.key_size;
    total = w + 2 * size_t(s.key_size);
  }
};

template <class S>
using VecMap = Eigen::Map<Eigen::Matrix<S, 1, Eigen::Dynamic>>;
template <class S>
using ConstVecMap = Eigen::Map<const Eigen::Matrix<S, 1, Eigen::Dynamic>>;

// dst[t] = src[t] / (||src[t]|| + eps) row by row; norms[t] = ||src[t]||.
template <class Src, class Dst, class S>
void schlag_rows(const Src& src, Dst& dst, S* norms) {
  for (Eigen::Index t = 0; t < src.rows(); ++t) {
    norms[t] = src.row(t).norm();
    dst.row(t) = src.row(t) / (norms[t] + S(kNormEps));
  }
}

// Backward of u_hat = u / (n + eps), n = ||u||, one row at a time:
//   du = du_hat / (n + eps) - u_hat (u_hat . du_hat) / n        (second term 0 if n = 0).
template <class UHat, class DUHat, class DU, class S>
void schlag_rows_backward(const UHat& u_hat, const S* norms, const DUHat& du_hat, DU& du) {
  for (Eigen::Index t = 0; t < u_hat.rows(); ++t) {
    const S n = norms[t];
    du.row(t) = du_hat.row(t) / (n + S(kNormEps));
    if (n > 0) du.row(t) -= (u_hat.row(t).dot(du_hat.row(t)) / n) * u_hat.row(t);
  }
}

}  // namespace

size_t mesa_attention_cache_size(const AttentionShape& s) {
  return CacheLayout(s).head_block * s.batch * s.heads + size_t(s.seq_len) * s.key_size;
}

size_t mesa_attention_scratch_size(const AttentionShape& s) { return ScratchLayout(s).total; }

// Per (b, h), x_t := v-projection, y_t := k-projection, q_t (after optional SchlagNorm):
//   R_0 = lambda I
//   u_t = R_{t-1} x_t,  d_t = 1 + x_t . u_t,  v_t = u_t / sqrt(d_t)
//   R_t = R_{t-1} - v_t v_t^T            (Sherman-Morrison; the symmetric form keeps R
//                                         exactly symmetric in floating point)
//   p_t = R_t q_t
//   L = tril(P X^T),  a_t = s_t sum_{i<=t} L[t,i] y_i
// with s_t = 1 / (||L[t,:]|| + eps) under normalize_logits, else 1.
template <class S>
void mesa_attention_forward(const AttentionShape& s, const MesaOptions& opt, const S* q,
                            const S* k, const S* v, const S* lambdas, S* cache, S* out) {
  const int T = s.seq_len, K = s.key_size, H = s.heads, HK = s.width();
  const CacheLayout lay(s);
  for (int h = 0; h < H; ++h)
    if (!(lambdas[h] > 0) || !std::isfinite(lambdas[h]))
      fail_runtime("mesa head {}: lambda = {} (must be positive and finite)", h, lambdas[h]);
  auto O = mat(cache + lay.head_block * s.batch * H, T, K);
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < H; ++h) {
      S* c = cache + lay.head_block * (size_t(b) * H + h);
      const size_t off = size_t(b) * T * HK + size_t(h) * K;
      S* norms = c + lay.norms;
      auto X = mat(v + off, T, K, HK);

      const S* qp = q + off;
      const S* yp = k + off;
      Eigen::Index qs = HK, ys = HK;
      if (opt.schlag_norm) {
        auto Qn = mat(c + lay.qn, T, K);
        auto Yn = mat(c + lay.yn, T, K);
        schlag_rows(mat(q + off, T, K, HK), Qn, norms);
        schlag_rows(mat(k + off, T, K, HK), Yn, norms + T);
        if (opt.schlag_norm_targets) {
          for (int t = 0; t < T; ++t) {
            norms[2 * T + t] = X.row(t).norm();
            Yn.row(t) /= norms[2 * T + t] + S(kNormEps);
          }
        }
        qp = Qn.data();
        yp = Yn.data();
        qs = ys = K;
      }
      auto Q = mat(qp, T, K, qs);
      auto Y = mat(yp, T, K, ys);

      const S lambda = lambdas[h];
      auto P = mat(c + lay.p, T, K);
      auto V = mat(c + lay.v, T, K);
      // R_0 = lambda I; u_0 = R_0 x_0 = lambda x_0. u_t is carried in V.row(t) and scaled
      // into v_t in place.
      S* r0 = c + lay.r;
      mat(r0, K, K).setZero();
      mat(r0, K, K).diagonal().setConstant(lambda);
      V.row(0) = lambda * X.row(0);
      for (int t = 0; t < T; ++t) {
        auto vt = V.row(t);
        const S d = S(1) + X.row(t).dot(vt);
        if (!(d > 0) || !std::isfinite(d))
          fail_runtime(
              "mesa head {}, time step {} (sequence {} of the chunk): 1 + x^T R x = {} (must be "
              "positive and finite)",
              h, t, b, d);
        vt *= S(1) / std::sqrt(d);
        const S* src = r0;
        S* dst = r0;
        if constexpr (kVariant == Variant::StoredR) {
          src = r0 + size_t(t > 0 ? t - 1 : 0) * K * K;
          dst = r0 + size_t(t) * K * K;
        }
        // One pass over the rows j of R (R symmetric, so R q = sum_j q_j R[j,:]):
        //   R_t[j,:] = R_{t-1}[j,:] - v_j v,  p_t += q_j R_t[j,:],  u_{t+1} += x_{t+1,j} R_t[j,:].
        auto pt = P.row(t);
        pt.setZero();
        const bool next = t + 1 < T;
        if (next) V.row(t + 1).setZero();
        for (int j = 0; j < K; ++j) {
          VecMap<S> rj(dst + size_t(j) * K, K);
          rj = ConstVecMap<S>(src + size_t(j) * K, K) - vt(j) * vt;
          pt += Q(t, j) * rj;
          if (next) V.row(t + 1) += X(t + 1, j) * rj;
        }
      }

      auto L = mat(c + lay.logits, T, T);
      L.template triangularView<Eigen::Lower>() = P * X.transpose();
      L.template triangularView<Eigen::StrictlyUpper>().setZero();
      O.noalias() = L.template triangularView<Eigen::Lower>() * Y;
      if (opt.normalize_logits) {
        for (int t = 0; t < T; ++t) {
          norms[3 * T + t] = L.row(t).head(t + 1).norm();
          O.row(t) /= norms[3 * T + t] + S(kNormEps);
        }
      }
      // Head-minor output column k*H + h.
      for (int t = 0; t < T; ++t) {
        S* orow = out + (size_t(b) * T + t) * HK + h;
        for (int j = 0; j < K; ++j) orow[size_t(j) * H] = O(t, j);
      }
    }
  }
}

// Backward, per (b, h), given dA (the head-minor slice of d_out):
//   dA' = diag(s) dA,  dY = L^T dA',  D = tril(dA' Y^T)
//   normalize_logits: D[t] -= L[t] (L[t] . D[t]) s_t / ||L[t]||
//   dP = D X  (logit part),  dq_t = R_t dp_t  (p_t = R_t q_t)
// The dependence of R_t = (sum_{i<=t} x_i x_i^T + I/lambda)^{-1} on x_i: with
// G_t = dL/dR_t^{-1} = -sum_{s>=t} dq_s p_s^T (d inverse = -R d(R^{-1}) R, and R dp_s = dq_s),
//   dx_t += (G_t + G_t^T) x_t = -sum_{s>=t} [(p_s . x_t) dq_s + (dq_s . x_t) p_s]
// which with L^T = triu(X P^T) is, together with the logit part dX = D^T P,
//   dX = (D - tril(dQ X^T))^T P - L^T dQ
// and, since R_0^{-1} = I / lambda,  dlambda = -tr(G_1) / lambda^2 = sum_t dq_t . p_t / lambda^2.
// SchlagNorm backward follows last (u_hat = u / (||u|| + eps)).
template <class S>
void mesa_attention_backward(const AttentionShape& s, const MesaOptions& opt, const S* q,
                             const S* k, const S* v, const S* lambdas, const S* cache,
                             const S* d_out, S* dq, S* dk, S* dv, S* d_lambdas, S* scratch) {
  const int T = s.seq_len, K = s.key_size, H = s.heads, HK = s.width();
  const CacheLayout lay(s);
  const ScratchLayout sl(s);
  auto dA = mat(scratch + sl.d_out, T, K);
  auto dP = mat(scratch + sl.dp, T, K);
  auto dQ = mat(scratch + sl.dq, T, K);
  auto dY = mat(scratch + sl.dy, T, K);
  auto D = mat(scratch + sl.dl, T, T);
  auto M = mat(scratch + sl.m, T, T);
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < H; ++h) {
      const S* c = cache + lay.head_block * (size_t(b) * H + h);
      const size_t off = size_t(b) * T * HK + size_t(h) * K;
      const S* norms = c + lay.norms;
      const S lambda = lambdas[h];
      auto X = mat(v + off, T, K, HK);
      auto Q = opt.schlag_norm ? mat(c + lay.qn, T, K) : mat(q + off, T, K, HK);
      auto Y = opt.schlag_norm ? mat(c + lay.yn, T, K) : mat(k + off, T, K, HK);
      auto P = mat(c + lay.p, T, K);
      auto L = mat(c + lay.logits, T, T);

      for (int t = 0; t < T; ++t) {
        const S* grow = d_out + (size_t(b) * T + t) * HK + h;
        const S scale = opt.normalize_logits ? S(1) / (norms[3 * T + t] + S(kNormEps)) : S(1);
        for (int j = 0; j < K; ++j) dA(t, j) = grow[size_t(j) * H] * scale;
      }
      const auto Lt = L.template triangularView<Eigen::Lower>();
      dY.noalias() = Lt.transpose() * dA;
      D.template triangularView<Eigen::Lower>() = dA * Y.transpose();
      D.template triangularView<Eigen::StrictlyUpper>().setZero();
      if (opt.normalize_logits) {
        for (int t = 0; t < T; ++t) {
          const S n = norms[3 * T + t];
          if (!(n > 0)) continue;
          auto l = L.row(t).head(t + 1);
          auto d = D.row(t).head(t + 1);
          d -= (l.dot(d) / (n * (n + S(kNormEps)))) * l;
        }
      }
      dP.noalias() = D.template triangularView<Eigen::Lower>() * X;

      if constexpr (kVariant == Variant::StoredV) {
        // R_t = lambda I - sum_{i<=t} v_i v_i^T, so dQ = lambda dP - tril(dP V^T) V.
        auto V = mat(c + lay.v, T, K);
        M.template triangularView<Eigen::Lower>() = dP * V.transpose();
        dQ = lambda * dP;
        dQ.noalias() -= M.template triangularView<Eigen::Lower>() * V;
      } else if constexpr (kVariant == Variant::StoredR) {
        for (int t = 0; t < T; ++t)
          dQ.row(t).noalias() = dP.row(t) * mat(c + lay.r + size_t(t) * K * K, K, K);
      } else {
        // Reverse Sherman-Morrison downdate: with w = R_t x_t,
        //   R_{t-1} = R_t + w w^T / (1 - x_t . w)     (1 - x_t . w = 1 / d_t > 0).
        S* r = scratch + sl.r;
        S* w = scratch + sl.w;
        S* w_next = w + K;
        mat(r, K, K) = mat(c + lay.r, K, K);
        dQ.row(T - 1).setZero();
        VecMap<S>(w, K).setZero();
        for (int j = 0; j < K; ++j) {
          ConstVecMap<S> rj(r + size_t(j) * K, K);
          dQ.row(T - 1) += dP(T - 1, j) * rj;
          VecMap<S>(w, K) += X(T - 1, j) * rj;
        }
        for (int t = T - 1; t > 0; --t) {
          VecMap<S> wt(w, K), wn(w_next, K);
          const S e = S(1) - X.row(t).dot(wt);
          if (!(e > 0) || !std::isfinite(e))
            fail_runtime(
                "mesa head {}, time step {} (sequence {} of the chunk): reverse downdate lost "
                "positive definiteness (1 - x^T R x = {})",
                h, t, b, e);
          wt *= S(1) / std::sqrt(e);
          // One pass over the rows of R: R_{t-1}[j,:] = R_t[j,:] + w_j w, and accumulate
          // dq_{t-1} = R_{t-1} dp_{t-1} and the next w = R_{t-1} x_{t-1}.
          auto dq_prev = dQ.row(t - 1);
          dq_prev.setZero();
          wn.setZero();
          for (int j = 0; j < K; ++j) {
            VecMap<S> rj(r + size_t(j) * K, K);
            rj += wt(j) * wt;
            dq_prev += dP(t - 1, j) * rj;
            wn += X(t - 1, j) * rj;
          }
          std::swap(w, w_next);
        }
      }

      D.template triangularView<Eigen::Lower>() -= dQ * X.transpose();
      auto dX = mat(dv + off, T, K, HK);
      dX.noalias() = D.template triangularView<Eigen::Lower>().transpose() * P;
      dX.noalias() -= Lt.transpose() * dQ;
      d_lambdas[h] += dQ.cwiseProduct(P).sum() / (lambda * lambda);

      auto dQout = mat(dq + off, T, K, HK);
      auto dYout = mat(dk + off, T, K, HK);
      if (!opt.schlag_norm) {
        dQout = dQ;
        dYout = dY;
        continue;
      }
      schlag_rows_backward(Q, norms, dQ, dQout);
      // y_hat = y_tilde g with y_tilde = k / (||k|| + eps) and g = 1 / (||x|| + eps) under
      // schlag_norm_targets (else g = 1):
      //   dy_tilde = g dy_hat,  dx += -(dy_hat . y_hat) x / (||x|| (||x|| + eps)).
      if (opt.schlag_norm_targets) {
        for (int t = 0; t < T; ++t) {
          const S nx = norms[2 * T + t];
          const S g = S(1) / (nx + S(kNormEps));
          if (nx > 0) dX.row(t) -= (dY.row(t).dot(Y.row(t)) / (nx * (nx + S(kNormEps)))) * X.row(t);
          // y_tilde = y_hat / g; reuse dY / Y rows in place of dy_tilde / y_tilde.
          dY.row(t) *= g;
          const S nk = norms[T + t];
          dYout.row(t) = dY.row(t) / (nk + S(kNormEps));
          if (nk > 0) dYout.row(t) -= (Y.row(t).dot(dY.row(t)) / (g * g * nk)) * Y.row(t);
        }
      } else {
        schlag_rows_backward(Y, norms + T, dY, dYout);
      }
    }
  }
}

#define MESALAB_INSTANTIATE(S)                                                                \
  template void mesa_attention_forward<S>(const AttentionShape&, const MesaOptions&, const S*, \
                                          const S*, const S*, const S*, S*, S*);              \
  template void mesa_attention_backward<S>(const AttentionShape&, const MesaOptions&,         \
                                           const S*, const S*, const S*, const S*, const S*,  \
                                           const S*, S*, S*, S*, S*, S*);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
