#pragma once
// The interpolation experiment on a finished run directory, shared by `mesalab interpolate`
// and `mesalab reproduce`: replays the run (analysis/interpolation.hpp), checks the replay
// against its metrics.jsonl, and keeps the result in RUN_DIR/interpolation.json.
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/interpolation.hpp"

namespace mesalab::report {

struct RunInterpolationOptions {
  double alpha = 0.5;
  std::vector<std::string> overrides;  // --set on the run's config (e.g. train.threads)
  bool progress = true;
  // Reuse RUN_DIR/interpolation.json if it was made with this alpha from the run's final
  // step; otherwise replay.
  bool reuse = false;
};

// Throws Error naming why for a run without RevAlg-d or one that has not finished.
InterpolationResult interpolate_run_dir(const std::filesystem::path& run_dir,
                                        const RunInterpolationOptions& options);

}  // namespace mesalab::report
