#include "model/linear_attention.hpp"

#include "model/causal_blocks.hpp"

namespace mesalab {

size_t linear_attention_cache_size(const AttentionShape& s) {
  return size_t(s.batch) * s.heads * s.seq_len * s.seq_len;
}

// Per (b, h), with Q, K, V the (T x K) head slices (row stride H*K):
//   A = tril(Q K^T)        (T x T, diagonal included; only the causal blocks are computed)
//   out = A V
template <class S>
void linear_attention_forward(const AttentionShape& s, const S* q, const S* k, const S* v, S* cache,
                              S* out) {
  const int T = s.seq_len, K = s.key_size, HK = s.width();
  for (int b = 0; b < s.batch; ++b) {
    const size_t row0 = size_t(b) * T * HK;
    for (int h = 0; h < s.heads; ++h) {
      const size_t off = row0 + size_t(h) * K;
      auto Q = mat(q + off, T, K, HK);
      auto Kh = mat(k + off, T, K, HK);
      auto V = mat(v + off, T, K, HK);
      auto A = mat(cache + (size_t(b) * s.heads + h) * T * T, T, T);
      auto O = mat(out + off, T, K, HK);
      for_each_row_block(T, [&](int r0, int r1) {
        A.block(r0, 0, r1 - r0, r1).noalias() =
            Q.middleRows(r0, r1 - r0) * Kh.topRows(r1).transpose();
        zero_above_diagonal(A, r0, r1);
      });
      causal_times(A, V, O, T);
    }
  }
}

// Differentiates out = A V with A = tril(Q K^T):
//   dV = A^T dOut,  dA = tril(dOut V^T),  dQ = dA K,  dK = dA^T Q.
template <class S>
void linear_attention_backward(const AttentionShape& s, const S* q, const S* k, const S* v,
                               const S* cache, const S* d_out, S* dq, S* dk, S* dv, S* scratch) {
  const int T = s.seq_len, K = s.key_size, HK = s.width();
  auto dA = mat(scratch, T, T);
  for (int b = 0; b < s.batch; ++b) {
    const size_t row0 = size_t(b) * T * HK;
    for (int h = 0; h < s.heads; ++h) {
      const size_t off = row0 + size_t(h) * K;
      auto Q = mat(q + off, T, K, HK);
      auto Kh = mat(k + off, T, K, HK);
      auto V = mat(v + off, T, K, HK);
      auto A = mat(cache + (size_t(b) * s.heads + h) * T * T, T, T);
      auto dO = mat(d_out + off, T, K, HK);
      auto dQ = mat(dq + off, T, K, HK);
      auto dK = mat(dk + off, T, K, HK);
      auto dV = mat(dv + off, T, K, HK);
      causal_transpose_times(A, dO, dV, T);
      for_each_row_block(T, [&](int r0, int r1) {
        dA.block(r0, 0, r1 - r0, r1).noalias() =
            dO.middleRows(r0, r1 - r0) * V.topRows(r1).transpose();
        zero_above_diagonal(dA, r0, r1);
      });
      causal_times(dA, Kh, dQ, T);
      causal_transpose_times(dA, Q, dK, T);
    }
  }
}

#define MESALAB_INSTANTIATE(S)                                                                    \
  template void linear_attention_forward<S>(const AttentionShape&, const S*, const S*, const S*,  \
                                            S*, S*);                                              \
  template void linear_attention_backward<S>(const AttentionShape&, const S*, const S*, const S*, \
                                             const S*, const S*, S*, S*, S*, S*);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
