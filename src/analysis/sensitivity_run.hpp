#pragma once
// The first block's sensitivity (analysis/sensitivity.hpp) of a finished or running run's
// stored parameters, so that runs trained without train.sensitivity_every get the curve over
// training too (at the resolution of train.checkpoint_every).
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/sensitivity.hpp"

namespace mesalab {

struct RunSensitivity {
  SensitivityRecord record;
  std::string source;  // the checkpoint read, or "init (train.seed)"
};

// every_checkpoint: the initialisation (step 0, redrawn from train.seed as train draws it)
// and every ckpt/step_<N>.safetensors in step order; else the latest checkpoint alone. Each
// on the run's sensitivity_batch of `batch` sequences. Errors (bad input) name the run
// directory if it is not a run or has no such checkpoint, or the checkpoint of another config.
std::vector<RunSensitivity> run_sensitivity(const std::filesystem::path& run_dir,
                                            bool every_checkpoint, int batch);

}  // namespace mesalab
