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
  const int T = s.seq_len;
  for_each_head(s, [&](auto head, size_t attn) {
    const auto Q = head(q), Kh = head(k), V = head(v);
    auto O = head(out);
    auto A = mat(cache + attn, T, T);
    for_each_row_block(T, [&](int r0, int r1) {
      causal_block_product(A, Q, Kh, r0, r1);
      zero_above_diagonal(A, r0, r1);
    });
    causal_times(A, V, O, T);
  });
}

// Differentiates out = A V with A = tril(Q K^T):
//   dV = A^T dOut,  dA = tril(dOut V^T),  dQ = dA K,  dK = dA^T Q.
template <class S>
void linear_attention_backward(const AttentionShape& s, const S* q, const S* k, const S* v,
                               const S* cache, const S* d_out, S* dq, S* dk, S* dv, S* scratch) {
  const int T = s.seq_len;
  auto dA = mat(scratch, T, T);
  for_each_head(s, [&](auto head, size_t attn) {
    const auto Q = head(q), Kh = head(k), V = head(v), dO = head(d_out);
    auto dQ = head(dq), dK = head(dk), dV = head(dv);
    const auto A = mat(cache + attn, T, T);
    causal_transpose_times(A, dO, dV, T);
    for_each_row_block(T, [&](int r0, int r1) {
      causal_block_product(dA, dO, V, r0, r1);
      zero_above_diagonal(dA, r0, r1);
    });
    causal_times(dA, Kh, dQ, T);
    causal_transpose_times(dA, Q, dK, T);
  });
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
