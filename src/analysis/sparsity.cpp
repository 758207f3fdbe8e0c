#include "analysis/sparsity.hpp"

#include <cmath>

#include "analysis/revalg.hpp"
#include "core/error.hpp"

namespace mesalab {

double fraction_above(const RowMatrix<double>& m, double relative_threshold) {
  if (!(relative_threshold >= 0.0))
    fail("fraction_above: threshold must be >= 0, got {}", relative_threshold);
  const double max_abs = m.size() > 0 ? m.cwiseAbs().maxCoeff() : 0.0;
  if (max_abs == 0.0) return 0.0;
  const double cut = relative_threshold * max_abs;
  Eigen::Index count = 0;
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) count += std::abs(m(i, j)) > cut;
  return double(count) / double(m.size());
}

std::vector<HeadSparsity> weight_sparsity(const Transformer& model, const double* params,
                                          double relative_threshold) {
  for (int l = 0; l < model.config().layers(); ++l)
    if (model.config().mixers[size_t(l)] == MixerKind::Mesa)
      fail("weight sparsity: layer {} is a mesa layer (its q, k, v are not an attention's)", l);
  std::vector<HeadSparsity> heads;
  for (int l = 0; l < model.config().layers(); ++l)
    for (int h = 0; h < model.config().heads; ++h)
      heads.push_back({l, h, fraction_above(head_qk(model, params, l, h), relative_threshold),
                       fraction_above(head_pv(model, params, l, h), relative_threshold)});
  return heads;
}

}  // namespace mesalab
