#pragma once
// Constructed tokens of the paper's main setting (SPEC.md "Constructed tokens", official
// ConstructedFullSeqGenerator): E = 4D and the prediction of s_{t+1} is read from
// channels 0..D-1 of the final residual stream, which start at zero.

namespace mesalab {

// e_t = [0, s_t, s_t, s_{t-1}] (s_0 = 0) for t = 1..T; label_t = s_{t+1}.
// states: (B, T + 1, D) row-major; tokens: (B, T, 4D); labels: (B, T, D).
// Instantiated for S = float and S = double.
template <class S>
void build_constructed_tokens(const double* states, int batch, int seq_len, int dim, S* tokens,
                              S* labels);

}  // namespace mesalab
