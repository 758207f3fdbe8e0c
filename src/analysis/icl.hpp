#pragma once
// In-context linear regression with a model trained autoregressively on sequences
// (SPEC_EXPERIMENTS 8): the model runs unchanged on formatted examples (data/icl.hpp) and is
// scored where it predicts y_j, next to least-squares solvers on the same examples.
#include <cstdint>
#include <vector>

#include "data/icl.hpp"
#include "model/transformer.hpp"

namespace mesalab {

// Per example j = 1..n (shots j - 1), loss_j = sum_b sum_d (pred_j - y_j)_{b,d}^2 / (2B).
struct IclCurves {
  std::vector<double> model;
  // Least squares on the formatted sequence as if it were a linear sequence (each token
  // regressed on the one before, the official baseline; latest pair left out, ridge 1e-3).
  std::vector<double> lsq_sequence;
  // Least squares of y on x over the previous examples: W_j = argmin sum_{i<j} |y_i - W x_i|^2
  // + 1e-3 |W|^2, pred_j = W_j x_j (0 without examples). The best a regression can do.
  std::vector<double> lsq_examples;
};

// Fails (bad input) unless the model reads and predicts raw D-wide tokens (an embedding with
// input_dim = data_dim = cfg.dim): constructed-token models cannot take the examples.
void check_icl_model(const ModelConfig& model, const IclConfig& cfg);

// One test batch of `batch` tasks drawn with (seed, RngPurpose::Icl, step 0), formatted with
// eos (D) and prefix (P, D) as cfg.format needs.
IclCurves icl_curves(const Transformer& model, const std::vector<float>& params,
                     const IclConfig& cfg, const std::vector<double>& eos,
                     const std::vector<double>& prefix, uint64_t seed, int batch);

}  // namespace mesalab
