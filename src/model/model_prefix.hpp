#pragma once
// The first blocks of a model as a model of their own: the same input embedding, positional
// codes (additive and, for block 0, query/key), blocks 0..n-1 with their clip, and the output
// embedding (kept so that the layout is a complete model, unused by analyses of the stream).
// Its final residual stream x_n equals the full model's ws.layer(n - 1).output, at the cost of
// n blocks instead of L: what an analysis of an early block runs (analysis/sensitivity.hpp).
#include <vector>

#include "model/transformer.hpp"

namespace mesalab {

// The model of the first `blocks` blocks (1..L; Error naming the count otherwise).
Transformer prefix_model(const Transformer& model, int blocks);

// The prefix's parameters taken from the full model's, tensor by tensor by name (prefix
// tensors are a subset of the model's, with the same shapes).
template <class S>
std::vector<S> prefix_params(const Transformer& model, const Transformer& prefix, const S* params);

}  // namespace mesalab
