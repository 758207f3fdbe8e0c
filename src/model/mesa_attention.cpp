#include "model/mesa_attention.hpp"

#include <cmath>
#include <type_traits>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"

namespace mesalab {
namespace {

// Added to every norm before dividing, as in the official code (SchlagNorm and
// normalization_mesa both use u / (||u|| + 1e-16)).
constexpr double kNormEps = 1e-16;

// Key size whose kernels are specialised at compile time (the paper's K = 20): fixed-size
// Eigen row operations avoid the per-row overhead of run-time sized ones (the whole mixer
// runs at ~38 GFLOP/s at K = 20 vs ~26 at K = 16). Other key sizes take the generic path.
constexpr int kFastKeySize = 20;

// Per (b, h) the cache holds, in this order:
//   P  (T, K)     p_t = R_t q_t
//   Qn (T, K)     queries after SchlagNorm (unused without it)
//   Vn (T, K)     values after SchlagNorm (unused without it)
//   L  (T, T)     causal logits L[t,i] = p_t . k_i for i <= t (the upper part is never read)
//   norms (4, T)  ||q_t||, ||v_t||, ||k_t||, ||L[t, :t]||
//   work (4, K)   temporaries of the recursion
//   R  (T, K, K)  R_1 .. R_T; forward-only: (2, K, K), R_t and R_{t-1} in turn
struct CacheLayout {
  size_t p, qn, vn, logits, norms, work, r, head_block;
  CacheLayout(const AttentionShape& s, bool keep_inverses) {
    const size_t T = size_t(s.seq_len), K = size_t(s.key_size);
    p = 0;
    qn = p + T * K;
    vn = qn + T * K;
    logits = vn + T * K;
    norms = logits + T * T;
    work = norms + 4 * T;
    r = work + 4 * K;
    head_block = r + (keep_inverses ? T : 2) * K * K;
  }
};

// Backward scratch, reused for every (b, h): dA, dP, dQ, dV (T, K each), D (T, T), work (K),
// and for a cache without inverses the recomputed R_1..R_T (T, K, K), p (T, K) and the
// recursion's temporaries (4, K).
struct ScratchLayout {
  size_t d_out, dp, dq, dv, dl, work, r, p, r_work, total;
  explicit ScratchLayout(const AttentionShape& s) {
    const size_t T = size_t(s.seq_len), K = size_t(s.key_size);
    d_out = 0;
    dp = d_out + T * K;
    dq = dp + T * K;
    dv = dq + T * K;
    dl = dv + T * K;
    work = dl + T * T;
    r = work + K;
    p = r + T * K * K;
    r_work = p + T * K;
    total = r_work + 4 * K;
  }
};

template <class S, int KC>
using RowOf = Eigen::Matrix<S, 1, KC>;
template <class S, int KC>
using SquareOf = Eigen::Matrix<S, KC, KC, Eigen::RowMajor>;

// K-vector temporaries of the kernels below: plain fixed-size vectors (registers) for a
// compile-time K; for a run-time K, maps over caller-provided memory, since a dynamic Eigen
// vector would allocate.
template <class S, int KC>
using TmpRow = std::conditional_t<KC == Eigen::Dynamic, Eigen::Map<RowOf<S, KC>>, RowOf<S, KC>>;

template <class S, int KC>
TmpRow<S, KC> tmp_row(S* memory, int K) {
  if constexpr (KC == Eigen::Dynamic)
    return TmpRow<S, KC>(memory, K);
  else
    return TmpRow<S, KC>();
}

template <class S>
struct RecursionArgs {
  int T, K;
  S lambda;
  const S* keys;  // k_t, row stride ks
  Eigen::Index ks;
  const S* q;  // queries q_t, row stride qs
  Eigen::Index qs;
  S* p;     // (T, K) out: p_t
  S* r;     // (T, K, K) out: R_1 .. R_T, or (2, K, K) with R_t at t % 2 if !keep_inverses
  S* work;  // (4, K) temporaries
  int head, seq;
  bool keep_inverses;
};

// Sherman-Morrison recursion for one (b, h); KC = K at compile time or Eigen::Dynamic.
//   R_0 = lambda I;  for t = 1..T:
//   u_t = R_{t-1} k_t,  d_t = 1 + k_t . u_t,  w_t = u_t / sqrt(d_t)
//   R_t = R_{t-1} - w_t w_t^T,   p_t = R_t q_t
// Subtracting w w^T (rather than u u^T / d) keeps R exactly symmetric in floating point, so
// R z = sum_j z_j R[j,:]: each step is one pass over the rows j of R that writes
// R_t[j,:] = R_{t-1}[j,:] - w_j w and accumulates p_t += q_j R_t[j,:] and
// u_{t+1} += k_{t+1,j} R_t[j,:]. d_t >= 1 in exact arithmetic; d_t <= 0 or non-finite
// means the state has broken down and is reported.
template <class S, int KC>
void sherman_morrison_forward(const RecursionArgs<S>& a) {
  using Row = RowOf<S, KC>;
  const int K = a.K;
  auto u = tmp_row<S, KC>(a.work, K);
  auto u_next = tmp_row<S, KC>(a.work + K, K);
  auto p = tmp_row<S, KC>(a.work + 2 * K, K);
  auto r = tmp_row<S, KC>(a.work + 3 * K, K);
  u = a.lambda * Eigen::Map<const Row>(a.keys, K);
  for (int t = 0; t < a.T; ++t) {
    const S d = S(1) + Eigen::Map<const Row>(a.keys + t * a.ks, K).dot(u);
    if (!(d > 0) || !std::isfinite(d))
      fail_runtime(
          "mesa head {}, time step {} (sequence {} of the chunk): 1 + k^T R k = {} (must be "
          "positive and finite)",
          a.head, t, a.seq, d);
    u *= S(1) / std::sqrt(d);
    // Forward-only, R_t overwrites R_{t-2}: the same arithmetic in a two-slot ring.
    const size_t slot = a.keep_inverses ? size_t(t) : size_t(t % 2);
    const size_t prev_slot = a.keep_inverses ? size_t(t > 0 ? t - 1 : 0) : size_t((t + 1) % 2);
    const S* r_prev = a.r + prev_slot * K * K;
    S* r_cur = a.r + slot * K * K;
    const S* q = a.q + t * a.qs;
    const S* k_next = a.keys + (t + 1 < a.T ? t + 1 : t) * a.ks;  // unused at the last step
    p.setZero();
    u_next.setZero();
    for (int j = 0; j < K; ++j) {
      if (t == 0) {
        r.setZero();
        r(j) = a.lambda;
      } else {
        r = Eigen::Map<const Row>(r_prev + size_t(j) * K, K);
      }
      r -= u(j) * u;
      Eigen::Map<Row>(r_cur + size_t(j) * K, K) = r;
      p += q[j] * r;
      u_next += k_next[j] * r;
    }
    Eigen::Map<Row>(a.p + size_t(t) * K, K) = p;
    u = u_next;
  }
}

template <class S>
void run_recursion(const RecursionArgs<S>& args) {
  if (args.K == kFastKeySize)
    sherman_morrison_forward<S, kFastKeySize>(args);
  else
    sherman_morrison_forward<S, Eigen::Dynamic>(args);
}

// dq_t = R_t dp_t = sum_j dp_{t,j} R_t[j,:] for t = 1..T with the stored R_t.
template <class S, int KC>
void apply_stored_inverses(int T, int K, const S* r, const S* dp, S* dq, S* work) {
  using Row = RowOf<S, KC>;
  auto acc = tmp_row<S, KC>(work, K);
  for (int t = 0; t < T; ++t) {
    const S* rt = r + size_t(t) * K * K;
    const S* dpt = dp + size_t(t) * K;
    acc = dpt[0] * Eigen::Map<const Row>(rt, K);
    for (int j = 1; j < K; ++j) acc += dpt[j] * Eigen::Map<const Row>(rt + size_t(j) * K, K);
    Eigen::Map<Row>(dq + size_t(t) * K, K) = acc;
  }
}

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

size_t mesa_attention_cache_size(const AttentionShape& s, bool keep_inverses) {
  return CacheLayout(s, keep_inverses).head_block * s.batch * s.heads;
}

size_t mesa_attention_scratch_size(const AttentionShape& s) { return ScratchLayout(s).total; }

// Per (b, h), with Kh, V, Q, P the (T, K) stacks of keys k_t, values v_t, queries q_t (v and
// q after the optional SchlagNorm) and p_t:
//   p_t = R_t q_t                           (sherman_morrison_forward, over the keys)
//   L = tril(P Kh^T),  A = diag(s) L V      s_t = 1 / (||L[t, :t]|| + eps) under
//                                           normalize_logits, else 1
// written into the head's columns of out, like every other mixer.
template <class S>
void mesa_attention_forward(const AttentionShape& s, const MesaOptions& opt, const S* q, const S* k,
                            const S* v, const S* lambdas, S* cache, S* out, bool keep_inverses) {
  const int T = s.seq_len, K = s.key_size, H = s.heads, HK = s.width();
  const CacheLayout lay(s, keep_inverses);
  for (int h = 0; h < H; ++h)
    if (!(lambdas[h] > 0) || !std::isfinite(lambdas[h]))
      fail_runtime("mesa head {}: lambda = {} (must be positive and finite)", h, lambdas[h]);
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < H; ++h) {
      S* c = cache + lay.head_block * (size_t(b) * H + h);
      const size_t off = size_t(b) * T * HK + size_t(h) * K;
      S* norms = c + lay.norms;
      auto Kh = mat(k + off, T, K, HK);

      const S* qp = q + off;
      const S* vp = v + off;
      Eigen::Index stride = HK;
      if (opt.schlag_norm) {
        auto Qn = mat(c + lay.qn, T, K);
        auto Vn = mat(c + lay.vn, T, K);
        schlag_rows(mat(q + off, T, K, HK), Qn, norms);
        schlag_rows(mat(v + off, T, K, HK), Vn, norms + T);
        if (opt.schlag_norm_targets) {
          for (int t = 0; t < T; ++t) {
            norms[2 * T + t] = Kh.row(t).norm();
            Vn.row(t) /= norms[2 * T + t] + S(kNormEps);
          }
        }
        qp = Qn.data();
        vp = Vn.data();
        stride = K;
      }
      auto V = mat(vp, T, K, stride);
      auto P = mat(c + lay.p, T, K);
      run_recursion(RecursionArgs<S>{T, K, lambdas[h], k + off, HK, qp, stride, P.data(), c + lay.r,
                                     c + lay.work, h, b, keep_inverses});

      auto L = mat(c + lay.logits, T, T);
      L.template triangularView<Eigen::Lower>() = P * Kh.transpose();
      auto A = mat(out + off, T, K, HK);
      A.noalias() = L.template triangularView<Eigen::Lower>() * V;
      if (opt.normalize_logits) {
        for (int t = 0; t < T; ++t) {
          norms[3 * T + t] = L.row(t).head(t + 1).norm();
          A.row(t) /= norms[3 * T + t] + S(kNormEps);
        }
      }
    }
  }
}

// Backward per (b, h), given dA (the head's slice of d_out), with tril() below always
// including the diagonal:
//   dA' = diag(s) dA,  dV = L^T dA',  D = tril(dA' V^T)           (A = diag(s) L V)
//   normalize_logits (L~ = diag(s) L):  D[t] -= L[t] (L[t] . D[t]) s_t / ||L[t]||
//   dP = D Kh (logit part),  dq_t = R_t dp_t                      (p_t = R_t q_t)
// R_t = M_t^{-1} with M_t = I/lambda + sum_{i<=t} k_i k_i^T. Since dR = -R dM R, the total
// gradient w.r.t. M_t is G_t = -sum_{s>=t} R_s dp_s q_s^T R_s = -sum_{s>=t} dq_s p_s^T, and
// k_t enters every M_s with s >= t, so
//   dk_t += (G_t + G_t^T) k_t = -sum_{s>=t} [(p_s . k_t) dq_s + (dq_s . k_t) p_s].
// With L^T = triu(Kh P^T) this and the logit part dKh = D^T P combine into three products:
//   dKh = (D - tril(dQ Kh^T))^T P - L^T dQ
// and, as dM_0 / dlambda = -I / lambda^2,  dlambda = -tr(G_1) / lambda^2
//                                                  = sum_t dq_t . p_t / lambda^2.
// The SchlagNorm backward (u_hat = u / (||u|| + eps)) is applied last.
// Without the inverses in the cache (inverses_in_cache = false) the backward first reruns the
// recursion of the (b, h) into scratch: the same arithmetic as the forward, so the same R_t.
template <class S>
void mesa_attention_backward(const AttentionShape& s, const MesaOptions& opt, const S* q,
                             const S* k, const S* v, const S* lambdas, const S* cache,
                             const S* d_out, S* dq, S* dk, S* dv, S* d_lambdas, S* scratch,
                             bool inverses_in_cache) {
  const int T = s.seq_len, K = s.key_size, H = s.heads, HK = s.width();
  const CacheLayout lay(s, inverses_in_cache);
  const ScratchLayout sl(s);
  auto dA = mat(scratch + sl.d_out, T, K);
  auto dP = mat(scratch + sl.dp, T, K);
  auto dQ = mat(scratch + sl.dq, T, K);
  auto dV = mat(scratch + sl.dv, T, K);
  auto D = mat(scratch + sl.dl, T, T);
  const auto Dl = D.template triangularView<Eigen::Lower>();
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < H; ++h) {
      const S* c = cache + lay.head_block * (size_t(b) * H + h);
      const size_t off = size_t(b) * T * HK + size_t(h) * K;
      const S* norms = c + lay.norms;
      const S lambda = lambdas[h];
      auto Kh = mat(k + off, T, K, HK);
      auto Q = opt.schlag_norm ? mat(c + lay.qn, T, K) : mat(q + off, T, K, HK);
      auto V = opt.schlag_norm ? mat(c + lay.vn, T, K) : mat(v + off, T, K, HK);
      auto P = mat(c + lay.p, T, K);
      const auto L = mat(c + lay.logits, T, T).template triangularView<Eigen::Lower>();

      dA = mat(d_out + off, T, K, HK);
      if (opt.normalize_logits)
        for (int t = 0; t < T; ++t) dA.row(t) /= norms[3 * T + t] + S(kNormEps);
      dV.noalias() = L.transpose() * dA;
      D.template triangularView<Eigen::Lower>() = dA * V.transpose();
      if (opt.normalize_logits) {
        for (int t = 0; t < T; ++t) {
          const S n = norms[3 * T + t];
          if (!(n > 0)) continue;
          auto l = mat(c + lay.logits, T, T).row(t).head(t + 1);
          auto d = D.row(t).head(t + 1);
          d -= (l.dot(d) / (n * (n + S(kNormEps)))) * l;
        }
      }
      dP.noalias() = Dl * Kh;
      const S* inverses = c + lay.r;
      if (!inverses_in_cache) {
        run_recursion(RecursionArgs<S>{T, K, lambda, k + off, HK, Q.data(), Q.outerStride(),
                                       scratch + sl.p, scratch + sl.r, scratch + sl.r_work, h, b,
                                       /*keep_inverses=*/true});
        inverses = scratch + sl.r;
      }
      if (K == kFastKeySize)
        apply_stored_inverses<S, kFastKeySize>(T, K, inverses, dP.data(), dQ.data(),
                                               scratch + sl.work);
      else
        apply_stored_inverses<S, Eigen::Dynamic>(T, K, inverses, dP.data(), dQ.data(),
                                                 scratch + sl.work);

      D.template triangularView<Eigen::Lower>() -= dQ * Kh.transpose();
      auto dKh = mat(dk + off, T, K, HK);
      dKh.noalias() = Dl.transpose() * P;
      dKh.noalias() -= L.transpose() * dQ;
      d_lambdas[h] += dQ.cwiseProduct(P).sum() / (lambda * lambda);

      auto dQout = mat(dq + off, T, K, HK);
      auto dVout = mat(dv + off, T, K, HK);
      if (!opt.schlag_norm) {
        dQout = dQ;
        dVout = dV;
        continue;
      }
      schlag_rows_backward(Q, norms, dQ, dQout);
      if (!opt.schlag_norm_targets) {
        schlag_rows_backward(V, norms + T, dV, dVout);
        continue;
      }
      // v_hat = v_tilde g with v_tilde = v / (||v|| + eps), g = 1 / (||k|| + eps):
      //   dk += -(dv_hat . v_hat) k / (||k|| (||k|| + eps)),   dv_tilde = g dv_hat,
      //   dv = dv_tilde / (||v|| + eps) - v_tilde (v_tilde . dv_tilde) / ||v||
      // with v_tilde = v_hat / g, so v_tilde (v_tilde . dv_tilde) = v_hat (v_hat . dv_tilde) / g^2.
      for (int t = 0; t < T; ++t) {
        const S nk = norms[2 * T + t], nv = norms[T + t];
        const S g = S(1) / (nk + S(kNormEps));
        if (nk > 0) dKh.row(t) -= (dV.row(t).dot(V.row(t)) / (nk * (nk + S(kNormEps)))) * Kh.row(t);
        dV.row(t) *= g;
        dVout.row(t) = dV.row(t) / (nv + S(kNormEps));
        if (nv > 0) dVout.row(t) -= (V.row(t).dot(dV.row(t)) / (g * g * nv)) * V.row(t);
      }
    }
  }
}

#define MESALAB_INSTANTIATE(S)                                                                   \
  template void mesa_attention_forward<S>(const AttentionShape&, const MesaOptions&, const S*,   \
                                          const S*, const S*, const S*, S*, S*, bool);           \
  template void mesa_attention_backward<S>(const AttentionShape&, const MesaOptions&, const S*,  \
                                           const S*, const S*, const S*, const S*, const S*, S*, \
                                           S*, S*, S*, S*, bool);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
