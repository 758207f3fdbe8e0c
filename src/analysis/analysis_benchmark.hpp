#pragma once
// Wall times of the analyses on the paper's shapes, for `mesalab bench --analyses`: they are
// closed-form linear algebra and should take seconds, not minutes (targets live here, in a
// benchmark, never in a timed test).
#include <string>
#include <vector>

namespace mesalab {

struct AnalysisTiming {
  std::string name;  // what was timed
  double seconds = 0.0;
  std::string shape;  // the problem size, one line
};

// Median over `repeats` runs of: the full probe grid (current, next, inverse, implicit; every
// layer and time step) of a randomly initialised 6-layer LSA on 256 sequences of length 50;
// the RevAlg-d extraction and its scoring on the 10 x 256 test set of a 2-layer H = 4, K = 40
// LSA; one interpolated-model evaluation on the same test set; and one record of
// train.sensitivity_every on the 7-layer raw-token softmax preset next to its training step.
std::vector<AnalysisTiming> time_analyses(int repeats = 3);

}  // namespace mesalab
