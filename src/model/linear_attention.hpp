#pragma once
// Causal linear self-attention (LSA) of the paper: no softmax, no scaling, the mask
// includes the diagonal. Per head h and sequence:  a_t = sum_{i<=t} (q_t . k_i) v_i.
#include <cstddef>

#include "model/attention_shape.hpp"

namespace mesalab {

// Attention matrices kept for the backward pass: (B, H, T, T).
size_t linear_attention_cache_size(const AttentionShape& s);

// q, k, v, out: (B, T, H*K). cache: scores A[t,i] = q_t . k_i for i <= t, 0 above.
template <class S>
void linear_attention_forward(const AttentionShape& s, const S* q, const S* k, const S* v, S* cache,
                              S* out);

// Overwrites dq, dk, dv (B, T, H*K) given d_out. scratch: T*T elements.
template <class S>
void linear_attention_backward(const AttentionShape& s, const S* q, const S* k, const S* v,
                               const S* cache, const S* d_out, S* dq, S* dk, S* dv, S* scratch);

}  // namespace mesalab
