#pragma once
// How sparse trained attention weights are, as the paper reads them off its weight plots:
// per layer and head, the share of entries of the products M_QK = Wq_h Wk_h^T and
// M_PV = Wv_h P_h (analysis/revalg.hpp) whose magnitude exceeds a fraction of the largest.
// A block-scalar (scaled-identity) pattern on 4D x 4D products has at most 16 D of (4D)^2
// entries, i.e. <= 1/D of them, non-zero; a dense random product has nearly all.
#include <vector>

#include "core/eigen_maps.hpp"
#include "model/transformer.hpp"

namespace mesalab {

// The threshold mesalab reports by default: entries above 1% of the product's largest.
inline constexpr double kDefaultSparsityThreshold = 0.01;

// #{(i, j): |m_ij| > relative_threshold * max |m|} / #entries; 0 for a zero matrix.
double fraction_above(const RowMatrix<double>& m, double relative_threshold);

struct HeadSparsity {
  int layer = 0, head = 0;
  double qk = 0.0, pv = 0.0;  // fraction_above of M_QK and M_PV
};

// Every attention head of every layer; throws Error (naming why) for models whose heads
// have no such products (mesa layers; see structure_ineligibility).
std::vector<HeadSparsity> weight_sparsity(const Transformer& model, const double* params,
                                          double relative_threshold);

}  // namespace mesalab
