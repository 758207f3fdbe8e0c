#include "data/tokens.hpp"

#include <cstddef>

#include "core/error.hpp"

namespace mesalab {

// tokens[b, t-1] = [0, s_t, s_t, s_{t-1}],  labels[b, t-1] = s_{t+1},  t = 1..T.
template <class S>
void build_constructed_tokens(const double* states, int batch, int seq_len, int dim, S* tokens,
                              S* labels) {
  if (batch < 1 || seq_len < 1 || dim < 1) {
    fail("build_constructed_tokens: batch, seq_len and dim must be >= 1, got {}, {}, {}", batch,
         seq_len, dim);
  }
  const size_t d = size_t(dim);
  const size_t e = 4 * d;
  for (size_t b = 0; b < size_t(batch); ++b) {
    const double* seq = states + b * (size_t(seq_len) + 1) * d;
    // Row k (0-based) is time t = k + 1; state s_t is stored at row t - 1 = k of `seq`.
    for (size_t k = 0; k < size_t(seq_len); ++k) {
      const double* s_t = seq + k * d;
      const double* s_prev = k == 0 ? nullptr : s_t - d;  // s_0 = 0
      const double* s_next = s_t + d;
      S* tok = tokens + (b * size_t(seq_len) + k) * e;
      S* lab = labels + (b * size_t(seq_len) + k) * d;
      for (size_t i = 0; i < d; ++i) {
        tok[i] = S(0);
        tok[d + i] = S(s_t[i]);
        tok[2 * d + i] = S(s_t[i]);
        tok[3 * d + i] = s_prev == nullptr ? S(0) : S(s_prev[i]);
        lab[i] = S(s_next[i]);
      }
    }
  }
}

template void build_constructed_tokens<float>(const double*, int, int, int, float*, float*);
template void build_constructed_tokens<double>(const double*, int, int, int, double*, double*);

}  // namespace mesalab
