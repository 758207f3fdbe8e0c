#pragma once
// The fixed sinusoidal positional code of models with an input embedding
// (SPEC_EXPERIMENTS.md 1e, model.positional_codes), added to the embedded tokens.

namespace mesalab {

// Fixed (not learned) sinusoidal positional code, out: (T, width) row-major, pos = 0..T-1:
//   out[pos, 2i]     = sin(pos * 10000^{-2i / width}),
//   out[pos, 2i + 1] = cos(pos * 10000^{-2i / width}).
// Both columns of a pair share one frequency. An odd width is allowed: its last column is the
// sine of an unpaired frequency.
void sinusoidal_positions(int seq_len, int width, double* out);

}  // namespace mesalab
