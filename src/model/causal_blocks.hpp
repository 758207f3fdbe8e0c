#pragma once
// Causal (lower-triangular) products done block by block, so the zero upper triangle of
// the T x T attention matrix is (mostly) never computed. Rows are cut into blocks of
// kCausalBlock; for the row block [r0, r1) only columns [0, r1) can be non-zero.
// Shared by the linear and softmax attention kernels. For finite inputs this equals the
// exact triangle; a NaN/inf at token i can leak (as 0 * inf) into earlier tokens of the
// same 16-row block, which only matters for locating the first bad value.
#include <algorithm>

#include "core/eigen_maps.hpp"
#include "model/attention_shape.hpp"

namespace mesalab {

inline constexpr int kCausalBlock = 16;

// Calls fn(r0, r1) for consecutive row blocks covering [0, T).
template <class Fn>
void for_each_row_block(int T, Fn&& fn) {
  for (int r0 = 0; r0 < T; r0 += kCausalBlock) fn(r0, std::min(T, r0 + kCausalBlock));
}

// Visits every (sequence, head) of a mixer: fn(head, attn) where head(p) maps the (T x K)
// slice of a (B, T, H*K) array p and attn is the offset of this head's (T x T) matrix in a
// (B, H, T, T) cache.
template <class Fn>
void for_each_head(const AttentionShape& s, Fn&& fn) {
  const int T = s.seq_len, K = s.key_size, HK = s.width();
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < s.heads; ++h) {
      const size_t off = size_t(b) * T * HK + size_t(h) * K;
      const auto head = [=](auto* p) { return mat(p + off, T, K, HK); };
      fn(head, (size_t(b) * s.heads + h) * T * T);
    }
  }
}

// The causal block of X Y^T for rows [r0, r1): A[r0:r1, 0:r1] = X[r0:r1] Y[0:r1]^T.
template <class AMat, class XMat, class YMat>
void causal_block_product(AMat& A, const XMat& X, const YMat& Y, int r0, int r1) {
  A.block(r0, 0, r1 - r0, r1).noalias() = X.middleRows(r0, r1 - r0) * Y.topRows(r1).transpose();
}

// Zeroes the strictly upper part of the diagonal block rows [r0, r1), columns [r0, r1).
template <class AMat>
void zero_above_diagonal(AMat& A, int r0, int r1) {
  for (int t = r0; t < r1; ++t)
    for (int i = t + 1; i < r1; ++i) A(t, i) = 0;
}

// out = tril(A) X for a lower-triangular A (T x T) whose upper part may hold garbage beyond
// the diagonal blocks: row block [r0, r1) reads only columns [0, r1) (X: T x K).
template <class AMat, class XMat, class OutMat>
void causal_times(const AMat& A, const XMat& X, OutMat& out, int T) {
  for_each_row_block(T, [&](int r0, int r1) {
    out.middleRows(r0, r1 - r0).noalias() = A.block(r0, 0, r1 - r0, r1) * X.topRows(r1);
  });
}

// out = tril(A)^T Y: column block [c0, c1) of A contributes rows [c0, T) only.
template <class AMat, class YMat, class OutMat>
void causal_transpose_times(const AMat& A, const YMat& Y, OutMat& out, int T) {
  for_each_row_block(T, [&](int c0, int c1) {
    out.middleRows(c0, c1 - c0).noalias() =
        A.block(c0, c0, T - c0, c1 - c0).transpose() * Y.middleRows(c0, T - c0);
  });
}

}  // namespace mesalab
