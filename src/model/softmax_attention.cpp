#include "model/softmax_attention.hpp"

#include <cmath>

#include "model/causal_blocks.hpp"

namespace mesalab {

size_t softmax_attention_cache_size(const AttentionShape& s) {
  return size_t(s.batch) * s.heads * s.seq_len * s.seq_len;
}

// Per (b, h):  Z = Q K^T / sqrt(K),  P[t,:] = softmax over i <= t of Z[t,i],  out = P V.
// Rows are shifted by their max for stability; masked entries are exactly 0. Only the
// causal blocks of Q K^T are computed (causal_blocks.hpp).
template <class S>
void softmax_attention_forward(const AttentionShape& s, const S* q, const S* k, const S* v,
                               S* cache, S* out) {
  const int T = s.seq_len, K = s.key_size, HK = s.width();
  const S scale = S(1) / std::sqrt(S(K));
  for (int b = 0; b < s.batch; ++b) {
    const size_t row0 = size_t(b) * T * HK;
    for (int h = 0; h < s.heads; ++h) {
      const size_t off = row0 + size_t(h) * K;
      auto Q = mat(q + off, T, K, HK);
      auto Kh = mat(k + off, T, K, HK);
      auto V = mat(v + off, T, K, HK);
      S* p = cache + (size_t(b) * s.heads + h) * T * T;
      auto P = mat(p, T, T);
      for_each_row_block(T, [&](int r0, int r1) {
        P.block(r0, 0, r1 - r0, r1).noalias() =
            (Q.middleRows(r0, r1 - r0) * Kh.topRows(r1).transpose()) * scale;
        for (int t = r0; t < r1; ++t) {
          // Eigen's vectorised exp over the causal part of the row.
          Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> row(p + size_t(t) * T, t + 1);
          row = (row - row.maxCoeff()).exp();
          row *= S(1) / row.sum();
        }
        zero_above_diagonal(P, r0, r1);
      });
      auto O = mat(out + off, T, K, HK);
      causal_times(P, V, O, T);
    }
  }
}

// Differentiates out = P V, P = softmax(Z), Z = Q K^T / sqrt(K):
//   dV = P^T dOut,  dP = dOut V^T,  dZ[t,i] = P[t,i] (dP[t,i] - sum_j P[t,j] dP[t,j]),
//   dQ = dZ K / sqrt(K),  dK = dZ^T Q / sqrt(K).
template <class S>
void softmax_attention_backward(const AttentionShape& s, const S* q, const S* k, const S* v,
                                const S* cache, const S* d_out, S* dq, S* dk, S* dv, S* scratch) {
  const int T = s.seq_len, K = s.key_size, HK = s.width();
  const S scale = S(1) / std::sqrt(S(K));
  auto dZ = mat(scratch, T, T);
  for (int b = 0; b < s.batch; ++b) {
    const size_t row0 = size_t(b) * T * HK;
    for (int h = 0; h < s.heads; ++h) {
      const size_t off = row0 + size_t(h) * K;
      auto Q = mat(q + off, T, K, HK);
      auto Kh = mat(k + off, T, K, HK);
      auto V = mat(v + off, T, K, HK);
      const S* p = cache + (size_t(b) * s.heads + h) * T * T;
      auto P = mat(p, T, T);
      auto dO = mat(d_out + off, T, K, HK);
      auto dQ = mat(dq + off, T, K, HK);
      auto dK = mat(dk + off, T, K, HK);
      auto dV = mat(dv + off, T, K, HK);
      causal_transpose_times(P, dO, dV, T);
      for_each_row_block(T, [&](int r0, int r1) {
        dZ.block(r0, 0, r1 - r0, r1).noalias() =
            dO.middleRows(r0, r1 - r0) * V.topRows(r1).transpose();
        for (int t = r0; t < r1; ++t) {
          const S* prow = p + size_t(t) * T;
          S* drow = scratch + size_t(t) * T;
          S dot = 0;
          for (int i = 0; i <= t; ++i) dot += prow[i] * drow[i];
          for (int i = 0; i <= t; ++i) drow[i] = prow[i] * (drow[i] - dot) * scale;
        }
        zero_above_diagonal(dZ, r0, r1);
      });
      causal_times(dZ, Kh, dQ, T);
      causal_transpose_times(dZ, Q, dK, T);
    }
  }
}

#define MESALAB_INSTANTIATE(S)                                                                     \
  template void softmax_attention_forward<S>(const AttentionShape&, const S*, const S*, const S*,  \
                                             S*, S*);                                              \
  template void softmax_attention_backward<S>(const AttentionShape&, const S*, const S*, const S*, \
                                              const S*, const S*, S*, S*, S*, S*);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
