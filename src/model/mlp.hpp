#pragma once
// The MLP of the paper's full transformer: two Flax Dense layers (y = x W, W stored (in, out)
// row-major, optional bias) around the tanh-approximate GELU (jax.nn.gelu's default):
//   h = x W1 + b1,  g = gelu(h),  out = g W2 + b2,   W1: (E, F), W2: (F, E).
// It is the second half of each pre-LN block, x += Attn(LN1(x)); x += MLP(LN2(x)), with no
// final LayerNorm. The official model has no biases (pass nullptr).
#include <cmath>
#include <cstddef>

namespace mesalab {

namespace detail {
template <class S>
constexpr S kGeluC = S(0.7978845608028654);  // sqrt(2 / pi)
template <class S>
constexpr S kGeluA = S(0.044715);
}  // namespace detail

// gelu(h) = 0.5 h (1 + tanh(u)),  u = sqrt(2/pi) (h + 0.044715 h^3).
template <class S>
S gelu(S h) {
  const S u = detail::kGeluC<S> * (h + detail::kGeluA<S> * h * h * h);
  return S(0.5) * h * (S(1) + std::tanh(u));
}

// gelu'(h) = 0.5 (1 + t) + 0.5 h (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 h^2),  t = tanh(u).
template <class S>
S gelu_derivative(S h) {
  const S h2 = h * h;
  const S t = std::tanh(detail::kGeluC<S> * (h + detail::kGeluA<S> * h2 * h));
  return S(0.5) * (S(1) + t) +
         S(0.5) * h * (S(1) - t * t) * detail::kGeluC<S> * (S(1) + S(3) * detail::kGeluA<S> * h2);
}

// Values kept for the backward pass: h and g, each (N, F).
size_t mlp_cache_size(size_t rows, int hidden);

// x, out: (N, E) with N = rows, E = width, F = hidden; w1: (E, F), b1: (F) or nullptr,
// w2: (F, E), b2: (E) or nullptr; cache: h (N, F) then g (N, F). Overwrites out.
template <class S>
void mlp_forward(size_t rows, int width, int hidden, const S* x, const S* w1, const S* b1,
                 const S* w2, const S* b2, S* cache, S* out);

// Given d_out (N, E): overwrites d_in (N, E), accumulates dw1 (E, F), dw2 (F, E) and the
// bias gradients db1 (F), db2 (E) unless they are nullptr. d_in may be the same buffer as
// d_out (d_out is fully read before d_in is written). scratch: N*F elements.
template <class S>
void mlp_backward(size_t rows, int width, int hidden, const S* x, const S* w1, const S* w2,
                  const S* cache, const S* d_out, S* d_in, S* dw1, S* db1, S* dw2, S* db2,
                  S* scratch);

}  // namespace mesalab
