#pragma once
// Causal softmax attention: a_t = sum_{i<=t} softmax_i(q_t . k_i / sqrt(K)) v_i.
#include <cstddef>

#include "model/attention_shape.hpp"

namespace mesalab {

// Attention probabilities kept for the backward pass: (B, H, T, T).
size_t softmax_attention_cache_size(const AttentionShape& s);

// q, k, v, out: (B, T, H*K). cache: P[t,i] (rows sum to 1 over i <= t, 0 above).
template <class S>
void softmax_attention_forward(const AttentionShape& s, const S* q, const S* k, const S* v,
                               S* cache, S* out);

// Overwrites dq, dk, dv given d_out. scratch: T*T elements.
template <class S>
void softmax_attention_backward(const AttentionShape& s, const S* q, const S* k, const S* v,
                                const S* cache, const S* d_out, S* dq, S* dk, S* dv, S* scratch);

}  // namespace mesalab
