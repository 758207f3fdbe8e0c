#pragma once
// Token formats built from sampled (observed) states:
// - constructed tokens of the paper's main setting (SPEC.md "Constructed tokens", official
//   ConstructedFullSeqGenerator): E = 4D and the prediction of s_{t+1} is read from
//   channels 0..D-1 of the final residual stream, which start at zero;
// - raw tokens o_t for models with a learned embedding (SPEC_EXPERIMENTS.md 1e);
// - delay-embedded tokens of the partial-observation setting (SPEC_EXPERIMENTS.md 1d,
//   official ConstructedPartObsGenerator).
// The positional codes that models add to raw tokens are in model/positional_codes.hpp.
// All token builders read states (B, T + 1, dim) row-major, as returned by sample_states, and
// are instantiated for S = float and S = double.
#include <string_view>

namespace mesalab {

// The token formats a run can train on (config key data.tokens). ConstructedMasked is the
// official mask_inputs variant [0, 0, s_t, s_{t-1}] (the paper's single-layer Fig. 2 runs).
enum class TokenFormat { Constructed, Raw, Delay, ConstructedMasked };

// Both constructed formats: E = 4D, four slots, the prediction read from slot 0.
inline bool is_constructed(TokenFormat format) {
  return format == TokenFormat::Constructed || format == TokenFormat::ConstructedMasked;
}

// "constructed", "raw", "delay", "constructed_masked".
std::string_view token_format_name(TokenFormat format);
// Inverse of token_format_name; an unknown name throws Error listing the allowed names.
TokenFormat parse_token_format(std::string_view name);

// e_t = [0, s_t, s_t, s_{t-1}] (s_0 = 0) for t = 1..T, or [0, 0, s_t, s_{t-1}] if masked;
// label_t = s_{t+1}. states: (B, T + 1, D) row-major; tokens: (B, T, 4D); labels: (B, T, D).
template <class S>
void build_constructed_tokens(const double* states, int batch, int seq_len, int dim, S* tokens,
                              S* labels, bool masked = false);

// e_t = o_t,  label_t = o_{t+1},  t = 1..T.
// states: (B, T + 1, dim); tokens: (B, T, dim); labels: (B, T, dim).
template <class S>
void build_raw_tokens(const double* states, int batch, int seq_len, int dim, S* tokens, S* labels);

// With m = obs_dim, E = embed_dim and n = floor(E / m) slots (n >= 1):
//   e_t = [o_t, o_{t-1}, ..., o_{t-n+1}, 0_{E - n m}],  o_j = 0 for j < 1,
//   label_t = o_{t+1},  t = 1..T.
// The delay vector lets a model regress o_{t+1} on a window of past observations, which is
// what the hidden state of a partially observed linear system needs. Unlike the constructed
// tokens there is no leading zero slot: the prediction is read from channels 0..m-1.
// states: (B, T + 1, m); tokens: (B, T, E); labels: (B, T, m). Requires E >= m.
// The official least-squares baseline of partial observations (lsq_partobs) stacks delay
// vectors of this width (part_obs_embed_dim) whatever the model's tokens.
inline constexpr int kDelayBaselineWidth = 80;

template <class S>
void build_delay_tokens(const double* states, int batch, int seq_len, int obs_dim, int embed_dim,
                        S* tokens, S* labels);

// Dispatches to the builder of `format`; width is the token width, which must be 4 dim
// (both constructed formats), dim (Raw) or >= dim (Delay, width = embed_dim). tokens: (B, T,
// width); labels: (B, T, dim) = o_{t+1} in every format.
template <class S>
void build_tokens(TokenFormat format, const double* states, int batch, int seq_len, int dim,
                  int width, S* tokens, S* labels);

}  // namespace mesalab
