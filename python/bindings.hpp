#pragma once
// The parts of the module, one concept each; module.cpp calls them in this order (the Model
// class first: the other parts take it as an argument).
#include <pybind11/pybind11.h>

namespace mesalab::python {

void bind_model(pybind11::module_& m);        // model.cpp: Model, config, evaluation
void bind_data(pybind11::module_& m);         // data.cpp: sequences and tokens
void bind_train(pybind11::module_& m);        // train.cpp: training with a callback
void bind_checkpoints(pybind11::module_& m);  // checkpoints.cpp: checkpoints, safetensors
void bind_baselines(pybind11::module_& m);    // baselines.cpp: baselines, GD fits on states
void bind_probes(pybind11::module_& m);       // probes.cpp: activations and linear probes
void bind_revalg(pybind11::module_& m);  // revalg.cpp: weight structure, RevAlg-1/-d, sparsity,
                                         // interpolation

}  // namespace mesalab::python
