#pragma once
// What the fuzz targets check, shared by the libFuzzer targets (fuzz/*_fuzz.cpp, clang) and
// the deterministic replay test (tests/io/fuzz_corpus_test.cpp, any compiler), so that CI
// exercises the checked-in corpus without clang.
//
// Each entry point feeds one untrusted input through a reader. Rejecting the input with a
// mesalab::Error is the expected outcome; everything else is a finding: another exception
// escaping (a std::out_of_range, an nlohmann::json::type_error, ...), a FuzzInvariantError
// (an accepted input that breaks a round trip or a documented guarantee), a crash, or a
// sanitizer report.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "io/config.hpp"
#include "io/safetensors.hpp"
#include "model/transformer.hpp"
#include "train/checkpoint.hpp"
#include "train/run_config.hpp"

namespace mesalab::fuzz {

// An accepted input broke a guarantee; deliberately not a mesalab::Error.
struct FuzzInvariantError : std::logic_error {
  using std::logic_error::logic_error;
};

inline void require(bool ok, const std::string& what) {
  if (!ok) throw FuzzInvariantError(what);
}

// Runs `f`; a mesalab::Error is an accepted way to fail, anything else propagates.
template <class F>
bool succeeds(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// ---- config: JSON config files and --set overrides ---------------------------------------

// The --set overrides a command line could carry: the input's lines (at most 64).
inline std::vector<std::string> override_lines(std::string_view input) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= input.size() && lines.size() < 64) {
    size_t end = input.find('\n', start);
    if (end == input.npos) end = input.size();
    lines.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// An accepted config must survive what `train` and `train --resume` do with it: dump it to
// config.json (which must not throw) and resolve it again to the same config.
inline void check_accepted_config(const RunConfig& r) {
  const std::string text = r.resolved.dump(2);
  const nlohmann::json reread = nlohmann::json::parse(text, nullptr, false);
  require(!reread.is_discarded(), "resolved config does not re-parse: " + text);
  RunConfig again;
  require(succeeds([&] { again = make_run_config(reread, {}); }),
          "resolved config is rejected when read back: " + text);
  require(again.resolved == r.resolved, "resolved config changes when read back: " + text);
}

// Returns whether the input was accepted as a config file.
inline bool check_config_input(std::string_view input) {
  using nlohmann::json;
  // 1. The input as a config file (discarded, i.e. rejected, when it is not JSON).
  const json file = json::parse(input, nullptr, /*allow_exceptions=*/false);
  const bool accepted = succeeds([&] { check_accepted_config(make_run_config(file, {})); });

  // 2. The input's lines as --set overrides, on the defaults and on the file.
  const std::vector<std::string> sets = override_lines(input);
  succeeds([&] { run_config_schema().resolve(nullptr, sets); });
  succeeds([&] { check_accepted_config(make_run_config(nullptr, sets)); });

  // 3. A JSON object's leaves as --set overrides ("model.layers=3", "model.layer=[...]"),
  //    which reach the override-specific typing rules with structured values.
  if (file.is_object()) {
    succeeds([&] {
      std::vector<std::string> leaves;
      const json flat = flatten_config(file);
      for (const auto& [key, value] : flat.items()) leaves.push_back(key + "=" + value.dump());
      check_accepted_config(make_run_config(nullptr, leaves));
      // A file together with overrides, as `train --config F --set ...` does.
      check_accepted_config(make_run_config(file, leaves));
    });
  }
  return accepted;
}

// ---- safetensors: the checkpoint reader --------------------------------------------------

// The small model whose checkpoints seed the corpus (tests/fuzz/corpus/safetensors/): two
// layers (linear attention, mesa), D = 2, H = 2, K = 2, so a checkpoint is a few KB.
inline std::vector<std::string> fuzz_model_overrides() {
  return {"name=fuzz_seed",
          "data.dim=2",
          "data.seq_len=4",
          "model.layers=2",
          "model.layer=[\"lsa\", \"mesa\"]",
          "model.heads=2",
          "model.key_size=2",
          "train.steps=2",
          "train.batch_size=2",
          "train.test_batches=1",
          "train.test_batch_size=2",
          "train.checkpoint_every=1",
          "train.eval_every=1",
          "train.threads=1"};
}

inline const RunConfig& fuzz_run_config() {
  static const RunConfig cfg = make_run_config(nullptr, fuzz_model_overrides());
  return cfg;
}

inline const Transformer& fuzz_model() {
  static const Transformer model(fuzz_run_config().model);
  return model;
}

// The scratch file load_checkpoint reads (it takes a path); one per process.
inline std::filesystem::path scratch_checkpoint_path() {
  const std::filesystem::path dir = std::filesystem::exists("/dev/shm")
                                        ? std::filesystem::path("/dev/shm")
                                        : std::filesystem::temp_directory_path();
  return dir / ("mesalab_fuzz_" + std::to_string(::getpid()) + ".safetensors");
}

inline bool same_tensors(const SafetensorsFile& a, const SafetensorsFile& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const Tensor &x = a.tensors[i], &y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.bytes != y.bytes)
      return false;
  }
  return true;
}

// Returns whether the input was accepted as a safetensors file.
inline bool check_safetensors_input(std::string_view input) {
  const std::string source = "fuzz.safetensors";
  SafetensorsFile file;
  try {
    file = parse_safetensors(input, source);
  } catch (const Error& e) {
    // Documented: a single-line message starting with the source name.
    const std::string message = e.what();
    require(message.rfind(source + ": ", 0) == 0 && message.find('\n') == message.npos,
            "parse error message is not one line starting with the source: " + message);
    return false;
  }

  // An accepted file round-trips through our writer unchanged.
  std::string again;
  require(succeeds([&] { again = serialize_safetensors(file); }),
          "a parsed file cannot be serialized again");
  SafetensorsFile reparsed;
  require(succeeds([&] { reparsed = parse_safetensors(again, "roundtrip"); }),
          "a re-serialized file does not parse");
  require(same_tensors(file, reparsed), "a parse/serialize round trip changes the file");

  // Typed reads with the declared shape succeed; a wrong shape or dtype is an Error.
  for (const Tensor& t : file.tensors) {
    std::vector<int64_t> other = t.shape;
    other.push_back(1);
    switch (t.dtype) {
      case DType::F32:
        require(file.get_f32(t.name, t.shape).size() * 4 == t.bytes.size(), "get_f32 size");
        require(!succeeds([&] { file.get_f32(t.name, other); }), "get_f32 ignored the shape");
        require(!succeeds([&] { file.get_f64(t.name, t.shape); }), "get_f64 ignored the dtype");
        break;
      case DType::F64:
        require(file.get_f64(t.name, t.shape).size() * 8 == t.bytes.size(), "get_f64 size");
        require(!succeeds([&] { file.get_i64(t.name, t.shape); }), "get_i64 ignored the dtype");
        break;
      case DType::I64:
        require(file.get_i64(t.name, t.shape).size() * 8 == t.bytes.size(), "get_i64 size");
        require(!succeeds([&] { file.get_f32(t.name, t.shape); }), "get_f32 ignored the dtype");
        break;
      case DType::I32:
      case DType::U8:
        require(!succeeds([&] { file.get_f32(t.name, t.shape); }), "get_f32 ignored the dtype");
        break;
    }
  }

  // What `train --resume` and `eval` do with a checkpoint of the seed model. Only files that
  // could be a checkpoint at all go to disk (load_checkpoint takes a path).
  if (file.metadata.count("format") == 0) return true;
  const std::filesystem::path path = scratch_checkpoint_path();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + path.string());
    const bool written = std::fwrite(input.data(), 1, input.size(), f) == input.size();
    std::fclose(f);
    if (!written) throw std::runtime_error("cannot write " + path.string());
  }
  const Transformer& model = fuzz_model();
  succeeds([&] {
    const TrainState state = load_checkpoint(path, model);
    require(state.step >= 0 && state.params.size() == model.num_params() &&
                state.adam_m.size() == model.num_params() &&
                state.adam_v.size() == model.num_params(),
            "load_checkpoint returned an inconsistent state");
  });
  succeeds([&] {
    const nlohmann::json config = checkpoint_config(path);
    succeeds([&] { check_accepted_config(make_run_config(config, {})); });
  });
  std::filesystem::remove(path);
  return true;
}

}  // namespace mesalab::fuzz
