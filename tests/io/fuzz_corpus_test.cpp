// Deterministic fuzz replay for the normal (gcc) build: every file of the checked-in corpus
// (tests/fuzz/corpus/**, seeds and crash regressions) goes through both fuzz entry points of
// fuzz/fuzz_checks.hpp, then a fixed-seed byte-level mutation loop runs over a valid
// checkpoint and a valid config. Only success or a mesalab::Error is acceptable; any other
// exception (including a FuzzInvariantError from a broken round trip) fails the test.
// The coverage-guided fuzzing itself is `scripts/fuzz <target> <runs>` (clang, libFuzzer).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "../../fuzz/fuzz_checks.hpp"
#include "io/atomic_file.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(MESALAB_SOURCE_DIR) / "tests" / "fuzz" / "corpus";

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(kCorpus))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs one input through an entry point; a failure names the input and what escaped.
template <class Check>
void expect_error_or_success(Check check, const std::string& input, const std::string& what) {
  try {
    check(input);
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << ": a non-std exception escaped";
  }
}

TEST(FuzzCorpus, EveryFileIsAcceptedOrRejectedWithAnError) {
  const std::vector<fs::path> files = corpus_files();
  // The seeds: valid and malformed configs and checkpoints (see scripts/fuzz).
  ASSERT_GE(files.size(), 20u) << "corpus missing under " << kCorpus;
  for (const fs::path& path : files) {
    const std::string bytes = read_file(path);
    const std::string name = fs::relative(path, kCorpus).string();
    expect_error_or_success(fuzz::check_config_input, bytes, name + " as a config");
    expect_error_or_success(fuzz::check_safetensors_input, bytes, name + " as safetensors");
  }
}

// The seed checkpoint is only a good seed while it loads; the format or the layout of the
// seed model may change. Regenerate it with:
//   mesalab train --set train.runs_dir=/tmp/seed <each of fuzz::fuzz_model_overrides()>
//   cp /tmp/seed/fuzz_seed/ckpt/step_2.safetensors
//   tests/fuzz/corpus/safetensors/valid_checkpoint.safetensors
TEST(FuzzCorpus, SeedCheckpointLoadsWithTheSeedModel) {
  const fs::path seed = kCorpus / "safetensors" / "valid_checkpoint.safetensors";
  try {
    const TrainState state = load_checkpoint(seed, fuzz::fuzz_model());
    EXPECT_EQ(state.step, 2);
  } catch (const Error& e) {
    FAIL() << "stale fuzz seed (regenerate it, see above): " << e.what();
  }
}

// Byte-level mutations: flips, interesting bytes, inserts, erasures, duplicated and
// truncated ranges, and dictionary tokens spliced in; 1 to 4 per input. The engine's raw
// output is used (not std::uniform_int_distribution) so the inputs are the same with every
// standard library.
class Mutator {
 public:
  Mutator(uint64_t seed, std::vector<std::string> tokens)
      : rng_(seed), tokens_(std::move(tokens)) {}

  std::string mutate(std::string s) {
    const int count = 1 + int(below(4));
    for (int i = 0; i < count; ++i) mutate_once(s);
    return s;
  }

 private:
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  void mutate_once(std::string& s) {
    static const char kInteresting[] = {'\0', '\x01', '\x7f', '\x80', '\xff', '"', '\\', '{', '}',
                                        '[',  ']',    ',',    ':',    '-',    '0', '9',  'e', '.'};
    const size_t pos = below(s.size() + 1);
    switch (below(8)) {
      case 0:  // flip one bit
        if (!s.empty()) s[pos % s.size()] ^= char(1u << below(8));
        break;
      case 1:  // overwrite with an interesting byte
        if (!s.empty()) s[pos % s.size()] = kInteresting[below(sizeof kInteresting)];
        break;
      case 2:  // overwrite with a random byte
        if (!s.empty()) s[pos % s.size()] = char(below(256));
        break;
      case 3:  // insert random bytes
        s.insert(pos, std::string(1 + below(4), char(below(256))));
        break;
      case 4:  // erase a range
        s.erase(pos, 1 + below(16));
        break;
      case 5:  // duplicate a range
        if (!s.empty()) {
          const size_t from = below(s.size());
          s.insert(pos, s.substr(from, 1 + below(32)));
        }
        break;
      case 6:  // truncate
        s.resize(pos);
        break;
      default:  // splice in a token
        s.insert(pos, tokens_[below(tokens_.size())]);
        break;
    }
  }

  std::mt19937_64 rng_;
  std::vector<std::string> tokens_;
};

// A checkpoint of the seed model written by this build, so the loop starts from a file that
// loads whatever the current format is.
std::string fresh_seed_checkpoint() {
  const Transformer& model = fuzz::fuzz_model();
  TrainState state;
  state.step = 3;
  state.params.resize(model.num_params());
  model.init_params(state.params.data(), 7);
  state.adam_m.assign(model.num_params(), 0.25f);
  state.adam_v.assign(model.num_params(), 0.5f);
  state.train_loss_sum = 1.5;
  state.train_loss_count = 2;
  const fs::path path = fs::temp_directory_path() /
                        ("mesalab_fuzz_seed_" + std::to_string(::getpid()) + ".safetensors");
  save_checkpoint(path, model, fuzz::fuzz_run_config().resolved, state);
  std::string bytes = read_file(path);
  fs::remove(path);
  return bytes;
}

struct LoopStats {
  int accepted = 0, rejected = 0;
  double seconds = 0;
};

// Runs `count` mutations of `seed` through `check` (which returns whether the reader
// accepted the input); stops at the first escaped exception.
template <class Check>
LoopStats mutation_loop(const std::string& seed, uint64_t rng_seed, std::vector<std::string> tokens,
                        int count, Check check, const std::string& what) {
  Mutator mutator(rng_seed, std::move(tokens));
  LoopStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    const std::string input = mutator.mutate(seed);
    try {
      (check(input) ? stats.accepted : stats.rejected) += 1;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << " mutation " << i << " (rng seed " << rng_seed << "): " << e.what();
      break;
    }
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[   info   ] " << count << " " << what << " mutations: " << stats.accepted
            << " accepted, " << stats.rejected << " rejected, " << stats.seconds << " s\n";
  return stats;
}

constexpr int kMutations = 20000;

TEST(FuzzMutation, CheckpointMutationsAreAcceptedOrRejectedWithAnError) {
  const std::string seed = fresh_seed_checkpoint();
  ASSERT_TRUE(fuzz::check_safetensors_input(seed));
  const LoopStats stats = mutation_loop(
      seed, 20240601,
      {"\"F64\"", "\"U8\"", "\"shape\"", "\"data_offsets\"", "[0,0]", "18446744073709551615",
       "4611686018427387904", "\"__metadata__\"", "null", "99999999", "\"step\":\"-1\""},
      kMutations, fuzz::check_safetensors_input, "checkpoint");
  // Both outcomes must be exercised, or the mutations are too weak (or too strong).
  EXPECT_GT(stats.accepted, kMutations / 1000);
  EXPECT_GT(stats.rejected, kMutations / 10);
}

TEST(FuzzMutation, ConfigMutationsAreAcceptedOrRejectedWithAnError) {
  const std::string seed = fuzz::fuzz_run_config().resolved.dump(2);
  ASSERT_TRUE(fuzz::check_config_input(seed));
  std::vector<std::string> tokens = {"\"lsa\"", "\"mesa\"", "[]",   "{}",          "1e400", "-1",
                                     "0",       "true",     "null", "\"\\u0000\"", "\n",    "="};
  for (const ConfigKey& k : run_config_schema().keys()) tokens.push_back("\n" + k.key + "=");
  const LoopStats stats =
      mutation_loop(seed, 20240602, tokens, kMutations, fuzz::check_config_input, "config");
  EXPECT_GT(stats.accepted, kMutations / 1000);
  EXPECT_GT(stats.rejected, kMutations / 10);
}

// ---- regressions found by scripts/fuzz (inputs in tests/fuzz/corpus/regressions/) --------

// config-set-invalid-utf8.txt: `--set data.kind=<invalid UTF-8>` escaped as an
// nlohmann::json::type_error (the error message dumped the value); `--set name=<invalid
// UTF-8>` was accepted and then threw the same type_error when config.json was written.
TEST(FuzzRegression, SetValueThatIsNotUtf8IsAnErrorNamingTheKey) {
  for (const std::string set :
       {"data.kind=\xdd))", "name=run\xff", "train.runs_dir=\xc3", "model.layer=\xe2\x82"}) {
    SCOPED_TRACE(set);
    try {
      make_run_config(nullptr, {set});
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(set.substr(0, set.find('='))), std::string::npos) << message;
      EXPECT_NE(message.find("UTF-8"), std::string::npos) << message;
    }
  }
  // Valid UTF-8 stays a string value.
  EXPECT_EQ(make_run_config(nullptr, {"name=caf\xc3\xa9"}).name, "caf\xc3\xa9");
}

// config-deep-nesting-*: found by hand while fuzzing (libFuzzer's inputs are too short to
// reach it). A config nested ~100k levels deep overflowed the stack (SIGSEGV): the error
// message dumped the value recursively ({"train": {"steps": [[[...]]]}}), and flattening
// recursed once per object level ({"a": {"a": ...}}). The corpus holds small versions (40
// levels, beyond the limit of 32); the crashing sizes are built here.
TEST(FuzzRegression, DeeplyNestedConfigIsAnErrorNotAStackOverflow) {
  constexpr int kDepth = 200000;
  const std::string arrays = std::string(kDepth, '[') + std::string(kDepth, ']');
  std::string objects;
  for (int i = 0; i < kDepth; ++i) objects += "{\"a\":";
  objects += "1" + std::string(kDepth, '}');
  for (const std::string& text : {"{\"train\": {\"steps\": " + arrays + "}}", objects}) {
    const nlohmann::json file = nlohmann::json::parse(text);
    try {
      make_run_config(file, {});
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("deeper than"), std::string::npos) << e.what();
    }
  }
  // --set values are bounded by the command line (128 KiB per argument), checked all the same.
  const std::string deep_set = "model.layer=" + std::string(60000, '[') + std::string(60000, ']');
  try {
    make_run_config(nullptr, {deep_set});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--set model.layer: the value nests deeper than"),
              std::string::npos)
        << e.what();
  }
  // Legitimate nesting is unaffected.
  EXPECT_NO_THROW(make_run_config(
      nlohmann::json::parse(R"({"model": {"layers": 2, "layer": ["lsa", "mesa"]}})"), {}));
}

// safetensors-loss-count-*: a checkpoint whose train.loss_accumulator count (stored as a
// double) is NaN or beyond int64 made load_checkpoint convert it with undefined behaviour
// (UBSan: "1e+300 is outside the range of representable values of type 'long'").
TEST(FuzzRegression, CheckpointWithInvalidLossCountIsAnError) {
  const fs::path path = fs::temp_directory_path() /
                        ("mesalab_fuzz_count_" + std::to_string(::getpid()) + ".safetensors");
  for (const double count : {1e300, -1e300, std::nan(""), -1.0, 2.5, 9.3e18}) {
    SCOPED_TRACE(count);
    SafetensorsFile file = parse_safetensors(fresh_seed_checkpoint(), "seed");
    for (Tensor& t : file.tensors)
      if (t.name == "train.loss_accumulator") std::memcpy(t.bytes.data() + 8, &count, 8);
    file.metadata["data_checksum"] = tensor_data_checksum(file);  // past the checksum
    save_safetensors(path, file);
    try {
      load_checkpoint(path, fuzz::fuzz_model());
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("train.loss_accumulator"), std::string::npos)
          << e.what();
    }
  }
  fs::remove(path);
}

}  // namespace
}  // namespace mesalab
