#pragma once
// Row-major Eigen views over raw buffers. All activations and weights in mesalab are
// row-major, so a (rows x cols) slice with row stride `stride` is a strided map.
#include <Eigen/Core>

namespace mesalab {

template <class S>
using RowMatrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class S>
using MatMap = Eigen::Map<RowMatrix<S>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class S>
using ConstMatMap = Eigen::Map<const RowMatrix<S>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class S>
MatMap<S> mat(S* data, Eigen::Index rows, Eigen::Index cols, Eigen::Index stride = -1) {
  return MatMap<S>(data, rows, cols, Eigen::OuterStride<>(stride < 0 ? cols : stride));
}
template <class S>
ConstMatMap<S> mat(const S* data, Eigen::Index rows, Eigen::Index cols, Eigen::Index stride = -1) {
  return ConstMatMap<S>(data, rows, cols, Eigen::OuterStride<>(stride < 0 ? cols : stride));
}

}  // namespace mesalab
