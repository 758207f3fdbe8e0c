#pragma once
// Mesa layer (the paper's least-squares attention). Per head h with inputs x_i (v-proj),
// targets y_i (k-proj), queries q_t and a learned lambda_h > 0:
//   R_t = (sum_{i<=t} x_i x_i^T + I / lambda_h)^{-1},   a_t = (sum_{i<=t} y_i x_i^T) R_t q_t.
// The output is written head-minor (column k*H + h), the official code's layout, so that
// o-projection weights exported from it load unchanged.
#include <cstddef>

#include "model/attention_shape.hpp"

namespace mesalab {

struct MesaOptions {
  bool schlag_norm = false;          // normalise queries and targets per head and token
  bool schlag_norm_targets = false;  // official quirk: targets also divided by ||inputs||
  bool normalize_logits = false;     // L2-normalise the causal logit row (p_t . x_i)_{i<=t}
};

size_t mesa_attention_cache_size(const AttentionShape& s);
size_t mesa_attention_scratch_size(const AttentionShape& s);

// q, k, v: (B, T, H*K) head-major; out: (B, T, K*H) head-minor; lambdas: (H).
template <class S>
void mesa_attention_forward(const AttentionShape& s, const MesaOptions& opt, const S* q,
                            const S* k, const S* v, const S* lambdas, S* cache, S* out);

// Overwrites dq, dk, dv; accumulates into d_lambdas (H).
template <class S>
void mesa_attention_backward(const AttentionShape& s, const MesaOptions& opt, const S* q,
                             const S* k, const S* v, const S* lambdas, const S* cache,
                             const S* d_out, S* dq, S* dk, S* dv, S* d_lambdas, S* scratch);

}  // namespace mesalab
