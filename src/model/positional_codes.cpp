#include "model/positional_codes.hpp"

#include <cmath>
#include <cstddef>

#include "core/error.hpp"

namespace mesalab {

// out[pos, c] = sin(pos w_i) for c = 2i, cos(pos w_i) for c = 2i + 1,
// with w_i = 10000^{-2i / width}.
void sinusoidal_positions(int seq_len, int width, double* out) {
  if (seq_len < 1 || width < 1) {
    fail("sinusoidal_positions: seq_len and width must be >= 1, got {}, {}", seq_len, width);
  }
  const size_t w = size_t(width);
  for (size_t pos = 0; pos < size_t(seq_len); ++pos) {
    double* row = out + pos * w;
    for (size_t c = 0; c < w; c += 2) {
      // c = 2i, so the exponent -2i / width is -c / width.
      const double freq = std::pow(10000.0, -double(c) / double(width));
      const double angle = double(pos) * freq;
      row[c] = std::sin(angle);
      if (c + 1 < w) row[c + 1] = std::cos(angle);
    }
  }
}

}  // namespace mesalab
