// End-to-end tests of the mesalab binary: exit codes (0 ok, 1 runtime failure, 2 bad input),
// one-line error messages, refusal to clobber an existing run, NaN detection with a kept
// checkpoint, eval of a finished run, and graceful failure on a truncated checkpoint.
// Every test works in a fresh temporary directory (cwd and train.runs_dir).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_util.hpp"
#include "train/checkpoint.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using testing::contains;
using testing::describe;
using testing::nonempty_lines;
using testing::read_all;
using testing::Result;

// Size and content of every regular file under `dir`, keyed by relative path.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_all(e.path());
  return files;
}

class CliTest : public testing::CliFixture {
 protected:
  CliTest() : CliFixture("mesalab_cli_") {}

  std::string runs_dir_set() const { return "--set train.runs_dir='" + runs_.string() + "'"; }

  // A tiny training run: 3 steps of 8 sequences of length 10.
  static constexpr const char* kTiny =
      "--set train.steps=3 --set train.batch_size=8 --set train.test_batches=1 "
      "--set train.test_batch_size=8 --set data.seq_len=10 --quiet --json";

  Result train_tiny(const std::string& name, const std::string& extra = "") {
    return mesalab("train --set name=" + name + " " + runs_dir_set() + " " + kTiny + " " + extra);
  }
};

// Bad input: exit status 2 and exactly one non-empty line, on stderr, naming `needle`.
void expect_bad_input(const Result& r, const std::string& needle) {
  EXPECT_TRUE(r.exited) << describe(r);
  EXPECT_EQ(r.code, 2) << describe(r);
  const auto lines = nonempty_lines(r.all());
  ASSERT_EQ(lines.size(), 1u) << describe(r);
  EXPECT_TRUE(contains(lines[0], needle)) << "'" << needle << "' not in: " << lines[0];
  EXPECT_TRUE(r.out.empty()) << "errors belong on stderr: " << describe(r);
}

// ---------------------------------------------------------------------------------------
// Argument errors.

TEST_F(CliTest, UnknownFlagExitsTwoWithMessage) {
  Result r = mesalab("train --no-such-flag " + runs_dir_set());
  EXPECT_TRUE(r.exited) << describe(r);
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "--no-such-flag")) << describe(r);
  EXPECT_FALSE(fs::exists(runs_));  // nothing was started

  r = mesalab("--no-such-flag train");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "--no-such-flag")) << describe(r);
  // Missing option values and positionals are parse errors too.
  r = mesalab("train --set");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "--set")) << describe(r);
  r = mesalab("eval");
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "run_dir")) << describe(r);
}

TEST_F(CliTest, UnknownSubcommandFails) {
  Result r = mesalab("frobnicate");
  EXPECT_TRUE(r.exited) << describe(r);
  EXPECT_NE(r.code, 0) << describe(r);
  EXPECT_FALSE(r.err.empty());
  r = mesalab("");  // a subcommand is required
  EXPECT_NE(r.code, 0) << describe(r);
}

TEST_F(CliTest, UnknownConfigKeyIsOneLineNamingIt) {
  expect_bad_input(mesalab("train --set bogus.key=1 " + runs_dir_set()), "bogus.key");
  EXPECT_FALSE(fs::exists(runs_));
}

TEST_F(CliTest, OutOfRangeValueExitsTwo) {
  expect_bad_input(mesalab("train --set optim.lr=-1 " + runs_dir_set()), "optim.lr");
  expect_bad_input(mesalab("train --set train.batch_size=0 " + runs_dir_set()), "train.batch_size");
  expect_bad_input(mesalab("train --set model.layers " + runs_dir_set()), "key=value");
  // Valid keys, impossible size: refused with the estimate before allocating, no bad_alloc.
  expect_bad_input(
      mesalab("train --set data.seq_len=100000 --set train.batch_size=1000000 " + runs_dir_set()),
      "of memory");
  EXPECT_FALSE(fs::exists(runs_));
}

TEST_F(CliTest, BadConfigFileExitsTwo) {
  std::ofstream(root_ / "c.json") << R"({"model": {"layers": 2,}})";
  expect_bad_input(mesalab("train --config c.json " + runs_dir_set()), "c.json");
  expect_bad_input(mesalab("train --config absent.json " + runs_dir_set()), "absent.json");
}

TEST_F(CliTest, ConfigListPrintsKnownKeys) {
  const Result r = mesalab("config --list");
  EXPECT_EQ(r.code, 0) << describe(r);
  for (const char* key :
       {"model.layers", "model.layer", "model.heads", "optim.lr", "optim.warmup_steps",
        "train.batch_size", "train.runs_dir", "data.seq_len", "debug.inject_nan_at_step"})
    EXPECT_TRUE(contains(r.out, key)) << key << " missing from:\n" << r.out;
}

TEST_F(CliTest, ConfigPrintsResolvedJson) {
  const Result r = mesalab("config --set model.heads=2");
  ASSERT_EQ(r.code, 0) << describe(r);
  const json c = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(c.is_discarded()) << r.out;
  EXPECT_EQ(c["model"]["heads"], 2);
  EXPECT_EQ(c["model"]["embed_dim"], 40);
}

TEST_F(CliTest, HelpOnEverySubcommandExitsZero) {
  for (const char* cmd : {"", "train", "eval", "baselines", "bench", "config", "inspect", "probe",
                          "revalg", "interpolate", "plot", "reproduce"}) {
    const Result r = mesalab(std::string(cmd) + " --help");
    EXPECT_TRUE(r.exited) << cmd;
    EXPECT_EQ(r.code, 0) << cmd << ": " << describe(r);
    EXPECT_TRUE(contains(r.all(), "Usage") || contains(r.all(), "usage"))
        << cmd << ": " << describe(r);
  }
  EXPECT_TRUE(contains(mesalab("train --help").all(), "--resume"));
  EXPECT_TRUE(contains(mesalab("bench --help").all(), "--analyses"));
}

// ---------------------------------------------------------------------------------------
// Training runs.

TEST_F(CliTest, TinyRunSucceedsAndEvalWorks) {
  const Result r = train_tiny("tiny");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(r.err.empty()) << "--quiet: " << r.err;
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  ASSERT_TRUE(j.contains("test_loss") && j["test_loss"].is_number()) << r.out;
  EXPECT_TRUE(std::isfinite(j["test_loss"].get<double>())) << r.out;
  EXPECT_GT(j["test_loss"].get<double>(), 0.0);
  EXPECT_EQ(j["steps"], 3);
  EXPECT_EQ(j["test_curve"].size(), 10u);  // one value per time step
  const fs::path run = runs_ / "tiny";
  EXPECT_TRUE(fs::exists(run / "config.json"));
  EXPECT_TRUE(fs::exists(run / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(run / "ckpt" / "latest.safetensors"));
  EXPECT_TRUE(fs::exists(run / "ckpt" / "step_3.safetensors"));

  Result e = mesalab("eval '" + run.string() + "'");
  EXPECT_TRUE(e.exited);
  EXPECT_EQ(e.code, 0) << describe(e);
  EXPECT_TRUE(fs::exists(run / "eval.csv"));

  e = mesalab("eval --json '" + run.string() + "'");
  ASSERT_EQ(e.code, 0) << describe(e);
  const json ej = json::parse(e.out, nullptr, false);
  ASSERT_FALSE(ej.is_discarded()) << e.out;
  EXPECT_EQ(ej["step"], 3);
  // The model's mean test loss from eval is the one train reported (same fixed test set).
  EXPECT_NEAR(ej["model"]["mean"].get<double>(), j["test_loss"].get<double>(),
              1e-9 * j["test_loss"].get<double>());
}

TEST_F(CliTest, InspectListsTensorsAndMetadata) {
  ASSERT_EQ(train_tiny("tiny").code, 0);
  const fs::path latest = runs_ / "tiny" / "ckpt" / "latest.safetensors";
  Result r = mesalab("inspect '" + latest.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "layers.1.o")) << r.out;
  EXPECT_TRUE(contains(r.out, "optim.v.layers.0.q")) << r.out;
  EXPECT_TRUE(contains(r.out, "step: 3")) << r.out;
  r = mesalab("inspect --json '" + latest.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["metadata"]["format_version"], std::to_string(kCheckpointFormatVersion));
  EXPECT_EQ(j["tensors"][0]["shape"], json::array({40, 80}));
  const fs::path junk = root_ / "junk.safetensors";
  std::ofstream(junk) << "not a safetensors file";
  expect_bad_input(mesalab("inspect '" + junk.string() + "'"), "junk.safetensors");
}

TEST_F(CliTest, InspectVerifyChecksEveryCheckpointOfARun) {
  ASSERT_EQ(train_tiny("tiny").code, 0);
  const fs::path run = runs_ / "tiny";
  Result r = mesalab("inspect --verify '" + run.string() + "'");
  ASSERT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "ok         " + (run / "ckpt" / "latest.safetensors").string()))
      << r.out;
  EXPECT_TRUE(contains(r.out, "0 corrupt")) << r.out;
  // Flip one byte of tensor data in the latest checkpoint (its header stays valid).
  const fs::path latest = run / "ckpt" / "latest.safetensors";
  std::string bytes = read_all(latest);
  bytes[bytes.size() - 5] ^= 0x01;
  std::ofstream(latest, std::ios::binary | std::ios::trunc) << bytes;
  r = mesalab("inspect --verify '" + run.string() + "'");
  EXPECT_EQ(r.code, 1) << describe(r);
  EXPECT_TRUE(contains(r.out, "CORRUPT") && contains(r.out, "checksum")) << r.out;
  EXPECT_TRUE(contains(r.out, "1 corrupt")) << r.out;
  // Loading it anywhere else is an error too, naming the file.
  r = mesalab("eval '" + run.string() + "'");
  EXPECT_NE(r.code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "checksum")) << describe(r);
}

TEST_F(CliTest, ExistingRunDirIsNotClobbered) {
  ASSERT_EQ(train_tiny("tiny").code, 0);
  const fs::path run = runs_ / "tiny";
  const auto before = snapshot(run);
  ASSERT_GE(before.size(), 4u);

  // Same name again, and also with a different config: refused, nothing touched.
  for (const std::string extra : {"", "--set optim.lr=0.01"}) {
    const Result r = train_tiny("tiny", extra);
    expect_bad_input(r, "tiny");
    EXPECT_TRUE(contains(r.err, "--resume") && contains(r.err, "--force")) << r.err;
    EXPECT_EQ(snapshot(run), before) << "an existing run directory was modified";
  }

  // A directory that is not a run at all is not taken over either.
  fs::create_directories(runs_ / "mine");
  std::ofstream(runs_ / "mine" / "notes.txt") << "my notes\n";
  expect_bad_input(train_tiny("mine"), "mine");
  EXPECT_EQ(snapshot(runs_ / "mine"),
            (std::map<std::string, std::string>{{"notes.txt", "my notes\n"}}));
}

TEST_F(CliTest, ForceRestartsAndResumeContinues) {
  ASSERT_EQ(train_tiny("tiny").code, 0);
  Result r = train_tiny("tiny", "--force");
  EXPECT_EQ(r.code, 0) << describe(r);
  const fs::path run = runs_ / "tiny";
  r = mesalab("train --resume '" + run.string() + "' --set train.steps=5 --quiet --json");
  ASSERT_EQ(r.code, 0) << describe(r);
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["steps"], 5);
  EXPECT_TRUE(fs::exists(run / "ckpt" / "step_5.safetensors"));
  // Only the length of a run and the thread count may change on resume.
  expect_bad_input(mesalab("train --resume '" + run.string() + "' --set optim.lr=0.1 --quiet"),
                   "optim.lr");
}

// --force removes the run and what mesalab derived from it (eval, figures, its own temporary
// files), never the user's files, even ones with ".tmp." in their name.
TEST_F(CliTest, ForceRemovesOnlyMesalabsOwnFiles) {
  ASSERT_EQ(train_tiny("tiny").code, 0);
  const fs::path run = runs_ / "tiny";
  ASSERT_EQ(mesalab("eval '" + run.string() + "'").code, 0);
  ASSERT_TRUE(fs::exists(run / "eval.json") && fs::exists(run / "figures"));
  for (const char* mine : {"notes.tmp.txt", "data.tmp.123", "draft.tmp."})
    std::ofstream(run / mine) << "user\n";
  std::ofstream(run / "metrics.jsonl.tmp.999") << "stale\n";
  std::ofstream(run / "ckpt" / "step_9.safetensors.tmp.42") << "stale\n";
  ASSERT_EQ(train_tiny("tiny", "--force").code, 0);
  for (const char* gone : {"eval.json", "eval.csv", "figures", "metrics.jsonl.tmp.999",
                           "ckpt/step_9.safetensors.tmp.42"})
    EXPECT_FALSE(fs::exists(run / gone)) << gone;
  for (const char* kept : {"notes.tmp.txt", "data.tmp.123", "draft.tmp."})
    EXPECT_TRUE(fs::exists(run / kept)) << kept;
}

TEST_F(CliTest, ResumeWithoutCheckpointExitsTwo) {
  // A directory that is no run at all.
  fs::create_directories(root_ / "empty");
  expect_bad_input(mesalab("train --resume '" + (root_ / "empty").string() + "' --quiet"), "empty");
  expect_bad_input(mesalab("train --resume '" + (root_ / "absent").string() + "' --quiet"),
                   "absent");
  // A run directory whose checkpoints are gone.
  ASSERT_EQ(train_tiny("tiny").code, 0);
  const fs::path run = runs_ / "tiny";
  fs::remove_all(run / "ckpt");
  const Result r = mesalab("train --resume '" + run.string() + "' --quiet");
  expect_bad_input(r, "checkpoint");
}

TEST_F(CliTest, InjectedNanStopsWithStepAndTensorAndKeepsCheckpoint) {
  const Result r =
      train_tiny("nan", "--set debug.inject_nan_at_step=2 --set train.checkpoint_every=1");
  EXPECT_TRUE(r.exited) << describe(r);
  EXPECT_EQ(r.code, 1) << describe(r);
  EXPECT_TRUE(contains(r.err, "step 2")) << r.err;
  EXPECT_TRUE(contains(r.err, "layers.0.q")) << r.err;  // the poisoned tensor
  EXPECT_EQ(nonempty_lines(r.err).size(), 1u) << r.err;
  const fs::path ckpt = runs_ / "nan" / "ckpt";
  EXPECT_TRUE(fs::exists(ckpt / "latest.safetensors"));
  EXPECT_TRUE(fs::exists(ckpt / "step_2.safetensors"));
  EXPECT_FALSE(fs::exists(ckpt / "step_3.safetensors"));
  // The kept checkpoint is the last good one (2 updates) and is usable.
  const Result e = mesalab("eval --json '" + (runs_ / "nan").string() + "'");
  ASSERT_EQ(e.code, 0) << describe(e);
  const json j = json::parse(e.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << e.out;
  EXPECT_EQ(j["step"], 2);
}

// ---------------------------------------------------------------------------------------
// Damaged checkpoints: a one-line error and a clean non-zero exit, never a crash.

void expect_clean_failure(const Result& r) {
  EXPECT_TRUE(r.exited) << "killed by a signal? " << describe(r);
  EXPECT_NE(r.code, 0) << describe(r);
  EXPECT_LT(r.code, 128) << describe(r);
  const auto lines = nonempty_lines(r.all());
  EXPECT_EQ(lines.size(), 1u) << describe(r);
  if (!lines.empty()) {
    EXPECT_TRUE(contains(lines[0], "error")) << lines[0];
  }
}

TEST_F(CliTest, EvalOfTruncatedCheckpointFailsCleanly) {
  ASSERT_EQ(train_tiny("tiny").code, 0);
  const fs::path run = runs_ / "tiny", latest = run / "ckpt" / "latest.safetensors";
  const uintmax_t size = fs::file_size(latest);
  ASSERT_GT(size, 100u);
  fs::resize_file(latest, size / 2);
  Result r = mesalab("eval '" + run.string() + "'");
  expect_clean_failure(r);
  EXPECT_TRUE(contains(r.err, "latest.safetensors")) << r.err;

  // Other damage: empty, shorter than the length prefix, header only, absurd header length.
  const std::string original = read_all(run / "ckpt" / "step_3.safetensors");
  uint64_t header_len = 0;
  for (int b = 0; b < 8; ++b) header_len |= uint64_t(uint8_t(original[b])) << (8 * b);
  ASSERT_LT(header_len + 8, original.size());
  std::string huge = original;
  for (int b = 0; b < 8; ++b) huge[b] = char(0xff);
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {"empty", ""},
      {"5 bytes", original.substr(0, 5)},
      {"header only", original.substr(0, 8 + header_len)},
      {"header cut", original.substr(0, 8 + header_len / 2)},
      {"one byte short", original.substr(0, original.size() - 1)},
      {"huge header length", huge}};
  for (const auto& [what, bytes] : damaged) {
    SCOPED_TRACE(what);
    std::ofstream(latest, std::ios::binary | std::ios::trunc) << bytes;
    expect_clean_failure(mesalab("eval '" + run.string() + "'"));
  }
  // Resuming from a damaged checkpoint fails just as cleanly (and is bad input).
  fs::resize_file(latest, size / 2);
  r = mesalab("train --resume '" + run.string() + "' --quiet");
  expect_clean_failure(r);
  EXPECT_EQ(r.code, 2) << describe(r);
}

TEST_F(CliTest, EvalOfMissingRunFailsCleanly) {
  const Result r = mesalab("eval '" + (root_ / "nope").string() + "'");
  expect_clean_failure(r);
  EXPECT_EQ(r.code, 2);
}

}  // namespace
}  // namespace mesalab
