#pragma once
// Checkpoints are safetensors files: the parameters under their registry names
// ("layers.0.q", ...), the Adam moments under "optim.m.<name>" / "optim.v.<name>", and the
// running train-loss accumulator; metadata holds the format version, the step and the
// fully resolved config, so a checkpoint alone is enough to rebuild and resume a run, and
// "data_checksum" (tensor_data_checksum), verified on every load: flipped tensor bytes are an
// error, not silently different numbers. Checkpoints written before the checksum existed
// load with a one-line note on stderr.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/sequences.hpp"
#include "model/transformer.hpp"

namespace mesalab {

// Version 2: mesa layers in the attention layout (model/official_layout.hpp); version 1
// files are converted on loading.
inline constexpr int kCheckpointFormatVersion = 2;

struct TrainState {
  int64_t step = 0;  // updates done so far
  std::vector<float> params, adam_m, adam_v;
  double train_loss_sum = 0.0;  // train losses since the last evaluation
  int64_t train_loss_count = 0;
  // kDataGeneratorVersion of the build that wrote the checkpoint (1 if it predates the key).
  int data_generator = kDataGeneratorVersion;
};

void save_checkpoint(const std::filesystem::path& path, const Transformer& model,
                     const nlohmann::json& resolved_config, const TrainState& state);

// Checks the format, version and checksum, and every tensor against the model's layout; the
// error names the first missing, mismatching or unknown tensor (a checkpoint of another model,
// e.g. with more layers, is rejected, not partly loaded).
TrainState load_checkpoint(const std::filesystem::path& path, const Transformer& model);

// The format, version and data checksum of a checkpoint file (no model needed). Returns
// false (with a note on stderr) for a checkpoint without a checksum; throws Error naming the
// file for a corrupt one.
bool verify_checkpoint_file(const std::filesystem::path& path);

// The resolved config stored in a checkpoint's metadata.
nlohmann::json checkpoint_config(const std::filesystem::path& path);

}  // namespace mesalab
