#include "model/mlp.hpp"

#include "core/eigen_maps.hpp"

namespace mesalab {

size_t mlp_cache_size(size_t rows, int hidden) { return 2 * rows * size_t(hidden); }

// X (N x E), W1 (E x F), W2 (F x E):
//   H = X W1 + 1 b1^T,  G = gelu(H)  (N x F),  Out = G W2 + 1 b2^T  (N x E).
template <class S>
void mlp_forward(size_t rows, int width, int hidden, const S* x, const S* w1, const S* b1,
                 const S* w2, const S* b2, S* cache, S* out) {
  const Eigen::Index N = Eigen::Index(rows), E = width, F = hidden;
  S* h = cache;
  S* g = cache + rows * size_t(hidden);
  auto H = mat(h, N, F);
  auto O = mat(out, N, E);
  H.noalias() = mat(x, N, E) * mat(w1, E, F);
  for (size_t r = 0; r < rows; ++r) {
    S* hr = h + r * hidden;
    S* gr = g + r * hidden;
    if (b1) {
      for (int j = 0; j < hidden; ++j) hr[j] += b1[j];
    }
    for (int j = 0; j < hidden; ++j) gr[j] = gelu(hr[j]);
  }
  O.noalias() = mat(g, N, F) * mat(w2, F, E);
  if (b2) {
    for (size_t r = 0; r < rows; ++r) {
      S* orow = out + r * width;
      for (int j = 0; j < width; ++j) orow[j] += b2[j];
    }
  }
}

// Differentiates the forward above:
//   dW2 += G^T dOut,  db2 += sum_rows dOut,  dG = dOut W2^T,  dH = dG * gelu'(H),
//   dW1 += X^T dH,    db1 += sum_rows dH,    dIn = dH W1^T.
template <class S>
void mlp_backward(size_t rows, int width, int hidden, const S* x, const S* w1, const S* w2,
                  const S* cache, const S* d_out, S* d_in, S* dw1, S* db1, S* dw2, S* db2,
                  S* scratch) {
  const Eigen::Index N = Eigen::Index(rows), E = width, F = hidden;
  const S* h = cache;
  const S* g = cache + rows * size_t(hidden);
  const auto dO = mat(d_out, N, E);
  auto dH = mat(scratch, N, F);
  mat(dw2, F, E).noalias() += mat(g, N, F).transpose() * dO;
  if (db2) {
    for (size_t r = 0; r < rows; ++r) {
      const S* drow = d_out + r * width;
      for (int j = 0; j < width; ++j) db2[j] += drow[j];
    }
  }
  dH.noalias() = dO * mat(w2, F, E).transpose();
  for (size_t r = 0; r < rows; ++r) {
    const S* hr = h + r * hidden;
    S* dr = scratch + r * hidden;
    for (int j = 0; j < hidden; ++j) dr[j] *= gelu_derivative(hr[j]);
    if (db1) {
      for (int j = 0; j < hidden; ++j) db1[j] += dr[j];
    }
  }
  mat(dw1, E, F).noalias() += mat(x, N, E).transpose() * dH;
  mat(d_in, N, E).noalias() = dH * mat(w1, E, F).transpose();
}

#define MESALAB_INSTANTIATE(S)                                                                     \
  template void mlp_forward<S>(size_t, int, int, const S*, const S*, const S*, const S*, const S*, \
                               S*, S*);                                                            \
  template void mlp_backward<S>(size_t, int, int, const S*, const S*, const S*, const S*,          \
                                const S*, S*, S*, S*, S*, S*, S*);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
