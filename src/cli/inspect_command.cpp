#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "train/checkpoint.hpp"

namespace mesalab::cli {

namespace {

// max |x| and RMS of a float tensor (other dtypes report none).
std::pair<double, double> tensor_stats(const Tensor& t) {
  if (t.dtype != DType::F32 && t.dtype != DType::F64) return {NAN, NAN};
  const size_t n = t.bytes.size() / dtype_size(t.dtype);
  double max_abs = 0, sum_sq = 0;
  for (size_t i = 0; i < n; ++i) {
    double x;
    if (t.dtype == DType::F32) {
      float f;
      std::memcpy(&f, t.bytes.data() + 4 * i, 4);
      x = f;
    } else {
      std::memcpy(&x, t.bytes.data() + 8 * i, 8);
    }
    max_abs = std::max(max_abs, std::abs(x));
    sum_sq += x * x;
  }
  return {max_abs, n ? std::sqrt(sum_sq / double(n)) : 0.0};
}

int run_inspect(const std::string& path, bool json) {
  const SafetensorsFile file = load_safetensors(path);
  nlohmann::json tensors = nlohmann::json::array();
  for (const Tensor& t : file.tensors) {
    const auto [max_abs, rms] = tensor_stats(t);
    tensors.push_back({{"name", t.name},
                       {"dtype", std::string(dtype_name(t.dtype))},
                       {"shape", t.shape},
                       {"max_abs", max_abs},
                       {"rms", rms}});
  }
  if (json) {
    nlohmann::json metadata(file.metadata);
    fmt::print("{}\n",
               nlohmann::json{{"file", path}, {"metadata", metadata}, {"tensors", tensors}}.dump());
    return 0;
  }
  fmt::print("{}\n", path);
  for (const auto& [key, value] : file.metadata)
    if (key != "config") fmt::print("  {}: {}\n", key, value);
  if (file.metadata.count("config"))
    fmt::print("  config: {} bytes of JSON (`mesalab inspect --json` prints it)\n",
               file.metadata.at("config").size());
  fmt::print("  {:<28} {:>5} {:>12} {:>12} {:>12}\n", "tensor", "dtype", "shape", "max |x|", "rms");
  for (const auto& t : tensors) {
    std::string shape;
    for (const auto& d : t["shape"])
      shape += (shape.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
    fmt::print("  {:<28} {:>5} {:>12} {:>12.4g} {:>12.4g}\n", t["name"].get<std::string>(),
               t["dtype"].get<std::string>(), shape, t["max_abs"].get<double>(),
               t["rms"].get<double>());
  }
  return 0;
}

// --verify: every checkpoint of a file or run directory (recursively), one line each; exit 1
// if any is corrupt.
int run_verify(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::recursive_directory_iterator(path))
      if (entry.is_regular_file() && entry.path().extension() == ".safetensors")
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) fail("inspect --verify: no .safetensors file under {}", path);
  } else {
    files.push_back(path);
  }
  int corrupt = 0;
  for (const fs::path& f : files) {
    try {
      fmt::print("{} {}\n", verify_checkpoint_file(f) ? "ok        " : "unverified", f.string());
    } catch (const Error& e) {
      ++corrupt;
      fmt::print("CORRUPT    {}\n", e.what());
    }
  }
  fmt::print("{} checkpoint(s), {} corrupt\n", files.size(), corrupt);
  return corrupt > 0 ? 1 : 0;
}

}  // namespace

Command add_inspect_command(CLI::App& root) {
  auto* app = root.add_subcommand("inspect", "List the tensors and metadata of a checkpoint");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto verify = std::make_shared<bool>(false);
  app->add_option("checkpoint", *path, "a .safetensors file (with --verify: or a run directory)")
      ->required();
  app->add_flag("--json", *json, "print as JSON (metadata incl. the resolved config)");
  app->add_flag("--verify", *verify,
                "check the format and the data checksum of the file or of every checkpoint "
                "under the directory (exit 1 if any is corrupt)");
  return {app,
          [path, json, verify] { return *verify ? run_verify(*path) : run_inspect(*path, *json); }};
}

}  // namespace mesalab::cli
