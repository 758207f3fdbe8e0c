#pragma once
// Causal (lower-triangular) products done block by block, so the zero upper triangle of
// the T x T attention matrix is (mostly) never computed. Rows are cut into blocks of
// kCausalBlock; for the row block [r0, r1) only columns [0, r1) can be non-zero.
// Shared by the linear and softmax attention kernels.
#include <algorithm>

#include "core/eigen_maps.hpp"

namespace mesalab {

inline constexpr int kCausalBlock = 16;

// Calls fn(r0, r1) for consecutive row blocks covering [0, T).
template <class Fn>
void for_each_row_block(int T, Fn&& fn) {
  for (int r0 = 0; r0 < T; r0 += kCausalBlock) fn(r0, std::min(T, r0 + kCausalBlock));
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
