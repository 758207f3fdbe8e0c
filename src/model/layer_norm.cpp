#include "model/layer_norm.hpp"

#include <cmath>

namespace mesalab {

size_t layer_norm_cache_size(size_t rows) { return 2 * rows; }

// Per row x (E):  mu = sum_j x_j / E,  var = sum_j (x_j - mu)^2 / E  (two passes),
//   rstd = 1 / sqrt(var + eps),  out_j = (x_j - mu) rstd scale_j + bias_j.
template <class S>
void layer_norm_forward(size_t rows, int width, const S* x, const S* scale, const S* bias, S* cache,
                        S* out) {
  const S inv_width = S(1) / S(width);
  for (size_t r = 0; r < rows; ++r) {
    const S* xr = x + r * width;
    S* yr = out + r * width;
    S sum = 0;
    for (int j = 0; j < width; ++j) sum += xr[j];
    const S mu = sum * inv_width;
    S sq = 0;
    for (int j = 0; j < width; ++j) sq += (xr[j] - mu) * (xr[j] - mu);
    const S rstd = S(1) / std::sqrt(sq * inv_width + kLayerNormEps<S>);
    cache[2 * r] = mu;
    cache[2 * r + 1] = rstd;
    for (int j = 0; j < width; ++j) yr[j] = (xr[j] - mu) * rstd * scale[j] + bias[j];
  }
}

// Per row, with xhat = (x - mu) rstd and g = d_out * scale (elementwise):
//   dx      += rstd (g - mean(g) - xhat mean(g xhat)),
//   d_scale += d_out xhat,  d_bias += d_out   (summed over the rows).
template <class S>
void layer_norm_backward(size_t rows, int width, const S* x, const S* scale, const S* cache,
                         const S* d_out, S* dx, S* d_scale, S* d_bias) {
  const S inv_width = S(1) / S(width);
  for (size_t r = 0; r < rows; ++r) {
    const S* xr = x + r * width;
    const S* dyr = d_out + r * width;
    S* dxr = dx + r * width;
    const S mu = cache[2 * r], rstd = cache[2 * r + 1];
    S sum_g = 0, sum_gx = 0;
    for (int j = 0; j < width; ++j) {
      const S xhat = (xr[j] - mu) * rstd;
      const S g = dyr[j] * scale[j];
      sum_g += g;
      sum_gx += g * xhat;
      d_scale[j] += dyr[j] * xhat;
      d_bias[j] += dyr[j];
    }
    const S mean_g = sum_g * inv_width, mean_gx = sum_gx * inv_width;
    for (int j = 0; j < width; ++j) {
      const S xhat = (xr[j] - mu) * rstd;
      dxr[j] += rstd * (dyr[j] * scale[j] - mean_g - xhat * mean_gx);
    }
  }
}

#define MESALAB_INSTANTIATE(S)                                                                  \
  template void layer_norm_forward<S>(size_t, int, const S*, const S*, const S*, S*, S*);       \
  template void layer_norm_backward<S>(size_t, int, const S*, const S*, const S*, const S*, S*, \
                                       S*, S*);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
