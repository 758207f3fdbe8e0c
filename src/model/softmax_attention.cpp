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
  const int T = s.seq_len;
  const S scale = S(1) / std::sqrt(S(s.key_size));
  for_each_head(s, [&](auto head, size_t attn) {
    const auto Q = head(q), Kh = head(k), V = head(v);
    auto O = head(out);
    S* p = cache + attn;
    auto P = mat(p, T, T);
    for_each_row_block(T, [&](int r0, int r1) {
      causal_block_product(P, Q, Kh, r0, r1);
      for (int t = r0; t < r1; ++t) {
        // Eigen's vectorised exp over the causal part of the row.
        Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> row(p + size_t(t) * T, t + 1);
        row *= scale;
        row = (row - row.maxCoeff()).exp();
        row *= S(1) / row.sum();
      }
      zero_above_diagonal(P, r0, r1);
    });
    causal_times(P, V, O, T);
  });
}

// Differentiates out = P V, P = softmax(Z), Z = Q K^T / sqrt(K):
//   dV = P^T dOut,  dP = dOut V^T,  dZ[t,i] = P[t,i] (dP[t,i] - sum_j P[t,j] dP[t,j]),
//   dQ = dZ K / sqrt(K),  dK = dZ^T Q / sqrt(K).
template <class S>
void softmax_attention_backward(const AttentionShape& s, const S* q, const S* k, const S* v,
                                const S* cache, const S* d_out, S* dq, S* dk, S* dv, S* scratch) {
  const int T = s.seq_len;
  const S scale = S(1) / std::sqrt(S(s.key_size));
  auto dZ = mat(scratch, T, T);
  for_each_head(s, [&](auto head, size_t attn) {
    const auto Q = head(q), Kh = head(k), V = head(v), dO = head(d_out);
    auto dQ = head(dq), dK = head(dk), dV = head(dv);
    const S* p = cache + attn;
    const auto P = mat(p, T, T);
    causal_transpose_times(P, dO, dV, T);
    for_each_row_block(T, [&](int r0, int r1) {
      causal_block_product(dZ, dO, V, r0, r1);
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
  });
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
