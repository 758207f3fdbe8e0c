#include "train/checkpoint.hpp"

#include <fmt/format.h>

#include <string>

#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "model/official_layout.hpp"

namespace mesalab {

using nlohmann::json;

void save_checkpoint(const std::filesystem::path& path, const Transformer& model,
                     const json& resolved_config, const TrainState& state) {
  SafetensorsFile file;
  file.metadata["format"] = "mesalab-checkpoint";
  file.metadata["format_version"] = std::to_string(kCheckpointFormatVersion);
  file.metadata["step"] = std::to_string(state.step);
  file.metadata["data_generator"] = std::to_string(state.data_generator);
  file.metadata["config"] = resolved_config.dump();
  for (const auto& spec : model.layout().specs()) {
    file.add_f32(spec.name, spec.shape, state.params.data() + spec.offset);
    file.add_f32("optim.m." + spec.name, spec.shape, state.adam_m.data() + spec.offset);
    file.add_f32("optim.v." + spec.name, spec.shape, state.adam_v.data() + spec.offset);
  }
  const double accumulator[2] = {state.train_loss_sum, double(state.train_loss_count)};
  file.add_f64("train.loss_accumulator", {2}, accumulator);
  file.metadata["data_checksum"] = tensor_data_checksum(file);
  save_safetensors(path, file);
}

// The file, its format and version checked; *verified says whether it had a checksum (a
// wrong one is an error).
static SafetensorsFile load_checked(const std::filesystem::path& path, bool* verified = nullptr) {
  SafetensorsFile file = load_safetensors(path);
  const auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != "mesalab-checkpoint")
    fail("{}: not a mesalab checkpoint (metadata 'format' missing)", path.string());
  const auto version = file.metadata.find("format_version");
  const std::string found = version == file.metadata.end() ? "" : version->second;
  if (found != "1" && found != std::to_string(kCheckpointFormatVersion))
    fail("{}: unsupported checkpoint format version '{}' (this build reads versions 1 to {})",
         path.string(), found, kCheckpointFormatVersion);
  const auto checksum = file.metadata.find("data_checksum");
  if (checksum == file.metadata.end()) {
    fmt::print(stderr,
               "note: {} has no data checksum (written before mesalab stored one); "
               "loaded unverified\n",
               path.string());
  } else if (const std::string actual = tensor_data_checksum(file); actual != checksum->second) {
    fail(
        "{}: the tensor data does not match its checksum (stored {}, computed {}): the file is "
        "corrupt",
        path.string(), checksum->second, actual);
  }
  if (verified != nullptr) *verified = checksum != file.metadata.end();
  return file;
}

bool verify_checkpoint_file(const std::filesystem::path& path) {
  bool verified = false;
  load_checked(path, &verified);
  return verified;
}

TrainState load_checkpoint(const std::filesystem::path& path, const Transformer& model) {
  const SafetensorsFile file = load_checked(path);
  TrainState state;
  try {
    state.step = std::stoll(file.metadata.at("step"));
  } catch (const std::exception&) {
    fail("{}: metadata 'step' is missing or not an integer", path.string());
  }
  if (state.step < 0) fail("{}: negative step in metadata", path.string());
  const auto generator = file.metadata.find("data_generator");
  state.data_generator = 1;
  if (generator != file.metadata.end()) {
    try {
      state.data_generator = std::stoi(generator->second);
    } catch (const std::exception&) {
      fail("{}: metadata 'data_generator' is not an integer", path.string());
    }
  }
  const size_t P = model.num_params();
  state.params.resize(P);
  state.adam_m.resize(P);
  state.adam_v.resize(P);
  for (const auto& spec : model.layout().specs()) {
    const std::string names[3] = {spec.name, "optim.m." + spec.name, "optim.v." + spec.name};
    std::vector<float>* targets[3] = {&state.params, &state.adam_m, &state.adam_v};
    for (int j = 0; j < 3; ++j) {
      const std::vector<float> values = file.get_f32(names[j], spec.shape);
      std::copy(values.begin(), values.end(), targets[j]->begin() + spec.offset);
    }
  }
  if (file.metadata.at("format_version") == "1" &&
      mesa_params_from_official(model, state.params.data())) {
    mesa_params_from_official(model, state.adam_m.data());
    mesa_params_from_official(model, state.adam_v.data());
    fmt::print(stderr,
               "note: {} is a format-1 checkpoint; its mesa layers were converted to the current "
               "layout (k/v swapped, o rows head-major)\n",
               path.string());
  }
  const size_t expected_tensors = 3 * model.layout().specs().size() + 1;
  if (file.tensors.size() != expected_tensors)
    for (const Tensor& t : file.tensors) {
      const std::string base = t.name.rfind("optim.m.", 0) == 0 || t.name.rfind("optim.v.", 0) == 0
                                   ? t.name.substr(8)
                                   : t.name;
      bool known = t.name == "train.loss_accumulator";
      for (const auto& spec : model.layout().specs()) known = known || spec.name == base;
      if (!known)
        fail(
            "{}: tensor '{}' is not part of this model ({} layers); the checkpoint belongs to "
            "another model",
            path.string(), t.name, model.config().layers());
    }
  const std::vector<double> acc = file.get_f64("train.loss_accumulator", {2});
  // The count is stored as a double; converting an out-of-range or NaN double is undefined.
  if (!(acc[1] >= 0.0 && acc[1] <= 9.007199254740992e15 && acc[1] == double(int64_t(acc[1]))))
    fail("{}: tensor 'train.loss_accumulator' holds an invalid step count {}", path.string(),
         acc[1]);
  state.train_loss_sum = acc[0];
  state.train_loss_count = int64_t(acc[1]);
  return state;
}

json checkpoint_config(const std::filesystem::path& path) {
  const SafetensorsFile file = load_checked(path);
  const auto it = file.metadata.find("config");
  if (it == file.metadata.end()) fail("{}: checkpoint has no 'config' metadata", path.string());
  const json config = json::parse(it->second, nullptr, false);
  if (config.is_discarded())
    fail("{}: checkpoint 'config' metadata is not valid JSON", path.string());
  return config;
}

}  // namespace mesalab
