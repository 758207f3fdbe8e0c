#include "model/softmax_attention.hpp"

#include <cmath>

#include "core/eigen_maps.hpp"

namespace mesalab {

size_t softmax_attention_cache_size(const AttentionShape& s) {
  return size_t(s.batch) * s.heads * s.seq_len * s.seq_len;
}

// Per (b, h):  Z = Q K^T / sqrt(K),  P[t,:] = softmax over i <= t of Z[t,i],  out = P V.
// Rows are shifted by their max for stability; masked entries are exactly 0.
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
      P.noalias() = (Q * Kh.transpose()) * scale;
      for (int t = 0; t < T; ++t) {
        S* row = p + size_t(t) * T;
        S row_max = row[0];
        for (int i = 1; i <= t; ++i) row_max = std::max(row_max, row[i]);
        S sum = 0;
        for (int i = 0; i <= t; ++i) {
          row[i] = std::exp(row[i] - row_max);
          sum += row[i];
        }
        const S inv = S(1) / sum;
        for (int i = 0; i <= t; ++i) row[i] *= inv;
        for (int i = t + 1; i < T; ++i) row[i] = 0;
      }
      mat(out + off, T, K, HK).noalias() = P * V;
    }
  }
}

// Differentiates out = P V, P = softmax(Z), Z = Q K^T / sqrt(K):
//   dV = P^T dOut,  dP = dOut V^T,  dZ[t,i] = P[t,i] (dP[t,i] - sum_j P[t,j] dP[t,j]),
//   dQ = dZ K / sqrt(K),  dK = dZ^T Q / sqrt(K).
template <class S>
void softmax_attention_backward(const AttentionShape& s, const S* q, const S* k, const S* v,
                                const S* cache, const S* d_out, S* dq, S* dk, S* dv,
                                S* scratch) {
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
      mat(dv + off, T, K, HK).noalias() = P.transpose() * dO;
      dZ.noalias() = dO * V.transpose();
      for (int t = 0; t < T; ++t) {
        const S* prow = p + size_t(t) * T;
        S* drow = scratch + size_t(t) * T;
        S dot = 0;
        for (int i = 0; i <= t; ++i) dot += prow[i] * drow[i];
        for (int i = 0; i <= t; ++i) drow[i] = prow[i] * (drow[i] - dot) * scale;
        for (int i = t + 1; i < T; ++i) drow[i] = 0;
      }
      mat(dq + off, T, K, HK).noalias() = dZ * Kh;
      mat(dk + off, T, K, HK).noalias() = dZ.transpose() * Q;
    }
  }
}

#define MESALAB_INSTANTIATE(S)                                                               \
  template void softmax_attention_forward<S>(const AttentionShape&, const S*, const S*,      \
                                             const S*, S*, S*);                              \
  template void softmax_attention_backward<S>(const AttentionShape&, const S*, const S*,     \
                                              const S*, const S*, const S*, S*, S*, S*, S*);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
