#pragma once
// LayerNorm of the paper's full transformer (Flax nn.LayerNorm defaults): each token is
// normalised over its E channels, then scaled and shifted by learned per-channel vectors,
//   y = (x - mu) rstd * scale + bias,  mu = mean(x),  rstd = 1 / sqrt(var(x) + eps),
// with var the biased variance mean((x - mu)^2) and eps = 1e-6. The model uses pre-LN
// blocks, x += Attn(LN1(x)); x += MLP(LN2(x)), and no final LayerNorm.
#include <cstddef>

namespace mesalab {

template <class S>
constexpr S kLayerNormEps = S(1e-6);

// Values kept for the backward pass: mu and rstd per row, (N, 2).
size_t layer_norm_cache_size(size_t rows);

// x, out: (N, E) with N = rows, E = width; scale, bias: (E); cache: (N, 2).
template <class S>
void layer_norm_forward(size_t rows, int width, const S* x, const S* scale, const S* bias, S* cache,
                        S* out);

// Given d_out (N, E), accumulates dx (N, E), d_scale (E) and d_bias (E).
template <class S>
void layer_norm_backward(size_t rows, int width, const S* x, const S* scale, const S* cache,
                         const S* d_out, S* dx, S* d_scale, S* d_bias);

}  // namespace mesalab
