#pragma once
// Small reductions shared by evaluation and analysis code.
#include <vector>

namespace mesalab {

// Mean of a per-time-step curve (0 for an empty one), summed in index order.
inline double curve_mean(const std::vector<double>& curve) {
  if (curve.empty()) return 0.0;
  double sum = 0.0;
  for (double v : curve) sum += v;
  return sum / double(curve.size());
}

}  // namespace mesalab
