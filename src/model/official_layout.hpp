#pragma once
// The official code's mesa layer (and mesalab checkpoints of format 1) lays its weights out
// differently from every other mixer: its regression inputs come from the projection named
// "v" and its targets from "k", and the rows of its o projection are head-minor (row j*H + h
// for key channel j of head h). mesalab's mesa layer uses the attention names and layout
// (keys k are the inputs, values v the targets, o rows head-major h*K + j; see
// mesa_attention.hpp), so such weights are converted once, on loading.
#include "model/transformer.hpp"

namespace mesalab {

// In place, for every mesa layer of `model`: swaps the tensors layers.<l>.k and layers.<l>.v
// and reorders the rows of layers.<l>.o from head-minor to head-major. `values` is any
// per-parameter vector in model.layout() (parameters, gradients, Adam moments). Returns
// whether the model has a mesa layer (otherwise nothing changed).
template <class S>
bool mesa_params_from_official(const Transformer& model, S* values);

}  // namespace mesalab
