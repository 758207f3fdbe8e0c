// Crash safety of a training run, through the mesalab binary: a run is SIGKILLed at
// pseudo-random moments (fixed seed) and resumed each time; after every kill the run
// directory must be loadable, and once finished the metrics and the final checkpoint must
// equal those of an uninterrupted run bit for bit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "train/checkpoint.hpp"
#include "train/run_config.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Small and quick, with a checkpoint after every step so that most kills land in or near
// a checkpoint write; eval_every = 5 exercises the metrics truncation on resume.
const std::vector<std::string> kSettings = {
    "name=crash",           "data.seq_len=10",         "train.batch_size=8",
    "train.test_batches=1", "train.test_batch_size=8", "train.checkpoint_every=1",
    "train.eval_every=5",   "train.steps=200"};

constexpr int kKills = 8;

fs::path make_temp_dir(const std::string& tag) {
  std::string pattern = (fs::temp_directory_path() / ("mesalab_" + tag + "_XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// Starts `mesalab <args>` with stdout and stderr appended to `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv_storage = {MESALAB_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

struct Exit {
  bool killed = false;  // by our SIGKILL
  int code = -1;        // exit status otherwise
};

Exit exit_of(int status) {
  Exit e;
  e.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  e.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return e;
}

Exit wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return exit_of(status);
}

// The exit of `pid` if it has ended (and is reaped now), nothing while it still runs.
std::optional<Exit> try_wait(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) != pid) return std::nullopt;
  return exit_of(status);
}

std::vector<std::string> train_args(const fs::path& runs_dir, bool force) {
  std::vector<std::string> args = {"train", "--quiet"};
  for (const std::string& s : kSettings) args.insert(args.end(), {"--set", s});
  args.insert(args.end(), {"--set", "train.runs_dir=" + runs_dir.string()});
  if (force) args.push_back("--force");
  return args;
}

// (step, train loss, test loss, lr) of every metrics line; a line that is not JSON fails.
struct MetricLine {
  int64_t step;
  json train_loss, test_loss, lr;
  bool operator==(const MetricLine&) const = default;
};

std::vector<MetricLine> read_metrics(const fs::path& run_dir) {
  std::vector<MetricLine> lines;
  std::istringstream in(read_file(run_dir / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ADD_FAILURE() << "metrics line is not JSON: " << line;
      continue;
    }
    lines.push_back(
        {j.at("step").get<int64_t>(), j.at("train_loss"), j.at("test_loss"), j.at("lr")});
  }
  return lines;
}

// Files whose name marks an unfinished atomic write ("<target>.tmp.<pid>").
std::vector<std::string> temp_files(const fs::path& run_dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(run_dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos)
      found.push_back(fs::relative(e.path(), run_dir).string());
  return found;
}

// Every tensor of two safetensors files, bit for bit (metadata differ: runs_dir).
void expect_same_tensors(const fs::path& a, const fs::path& b) {
  const SafetensorsFile fa = load_safetensors(a), fb = load_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    EXPECT_EQ(fa.tensors[i].name, fb.tensors[i].name);
    EXPECT_EQ(fa.tensors[i].shape, fb.tensors[i].shape);
    EXPECT_TRUE(fa.tensors[i].bytes == fb.tensors[i].bytes)
        << "tensor " << fa.tensors[i].name << " differs";
  }
  EXPECT_EQ(fa.metadata.at("step"), fb.metadata.at("step"));
}

TEST(CrashSafety, KilledAndResumedRunEqualsUninterruptedRun) {
  const fs::path root = make_temp_dir("crash_safety");
  const fs::path log = root / "log.txt";
  const RunConfig cfg = make_run_config(nullptr, kSettings);
  const Transformer model(cfg.model);

  // The uninterrupted reference.
  const fs::path ref_runs = root / "reference";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(wait_for(spawn(train_args(ref_runs, false), log)).code, 0) << read_file(log);
  const double reference_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const fs::path ref_dir = ref_runs / "crash";

  // The same run, killed at fixed pseudo-random delays and resumed after each kill.
  const fs::path runs = root / "killed";
  const fs::path dir = runs / "crash";
  const fs::path latest = dir / "ckpt" / "latest.safetensors";
  std::mt19937_64 rng(20240517);
  int64_t last_step = 0;
  int kills = 0, restarts_from_scratch = 0, finished_before_kill = 0;
  std::vector<std::string> killed_pids;
  std::string history;
  // Kills are placed by progress, not by wall-clock delay (a fixed or run-time-scaled delay
  // is flaky: the reference may run under load and the killed runs on an idle machine, or
  // the reverse). Each attempt waits until the checkpoint of a pseudo-random later step
  // exists, then kills after a pseudo-random fraction of about two steps' time, so that
  // kills land anywhere in a step, including inside checkpoint writes.
  const double seconds_per_step = reference_seconds / 200.0;
  for (int attempt = 0; attempt < kKills; ++attempt) {
    const int64_t target_step = last_step + 1 + int64_t(rng() % 20);
    const int jitter_us = int(2e6 * seconds_per_step * double(rng() % 1000) / 1000.0);
    // Resume when there is a checkpoint; a run killed before its first checkpoint (or
    // before config.json) cannot be resumed and is started again.
    const bool resumable = fs::exists(latest) && fs::exists(dir / "config.json");
    std::vector<std::string> args =
        resumable ? std::vector<std::string>{"train", "--quiet", "--resume", dir.string()}
                  : train_args(runs, fs::exists(dir));
    if (!resumable && attempt > 0) ++restarts_from_scratch;
    const pid_t pid = spawn(args, log);
    const fs::path target = dir / "ckpt" / ("step_" + std::to_string(target_step) + ".safetensors");
    std::optional<Exit> early_exit;
    while (!fs::exists(target) && !(early_exit = try_wait(pid)))
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (!early_exit) {
      std::this_thread::sleep_for(std::chrono::microseconds(jitter_us));
      ::kill(pid, SIGKILL);
    }
    const Exit e = early_exit ? *early_exit : wait_for(pid);
    if (e.killed) {
      ++kills;
      killed_pids.push_back(std::to_string(pid));
    } else {
      ASSERT_EQ(e.code, 0) << "attempt " << attempt << ": " << read_file(log);
      ++finished_before_kill;
    }
    const std::string delay_text =
        "step " + std::to_string(target_step) + "+" + std::to_string(jitter_us) + "us";
    SCOPED_TRACE("after kill " + std::to_string(attempt) + " at " + delay_text);

    // The run directory stays loadable: the latest checkpoint (if any) loads completely,
    // and never goes back in time.
    if (fs::exists(latest)) {
      TrainState state;
      ASSERT_NO_THROW(state = load_checkpoint(latest, model));
      EXPECT_GE(state.step, last_step);
      last_step = state.step;
      ASSERT_NO_THROW(checkpoint_config(latest));
    }
    history += " " + delay_text + "->step " + std::to_string(last_step) + ";";
    if (fs::exists(dir / "config.json")) {
      ASSERT_NO_THROW(make_run_config(json::parse(read_file(dir / "config.json")), {}));
    }
    // Any temporary file left behind belongs to a killed writer; none of them is a file that
    // a resume reads (config.json, metrics.jsonl, ckpt/latest.safetensors).
    for (const std::string& tmp : temp_files(dir)) {
      const std::string pid_suffix = tmp.substr(tmp.rfind(".tmp.") + 5);
      EXPECT_NE(std::find(killed_pids.begin(), killed_pids.end(), pid_suffix), killed_pids.end())
          << "temporary file of a live or unknown writer: " << tmp;
    }
  }

  // Finish the run.
  const bool resumable = fs::exists(latest) && fs::exists(dir / "config.json");
  const std::vector<std::string> finish =
      resumable ? std::vector<std::string>{"train", "--quiet", "--resume", dir.string()}
                : train_args(runs, fs::exists(dir));
  ASSERT_EQ(wait_for(spawn(finish, log)).code, 0) << read_file(log);
  EXPECT_TRUE(temp_files(dir).empty()) << "a resumed or restarted run removes stale temp files";

  std::cout << "[   info   ] reference run " << reference_seconds << " s; " << kills << " kills, "
            << finished_before_kill << " runs finished before their kill, " << restarts_from_scratch
            << " restarts without a checkpoint, last checkpoint step "
            << "seen after a kill " << last_step << "; kills (delay->latest checkpoint):" << history
            << " temporary files left:";
  for (const std::string& tmp : temp_files(dir)) std::cout << " " << tmp;
  std::cout << "\n";
  EXPECT_GE(kills, kKills / 2) << "the kills should land while training";

  // Bit-identical to the uninterrupted run: every metrics line (no line lost, none twice),
  // and every tensor of the final checkpoint (parameters, Adam moments, loss accumulator).
  const std::vector<MetricLine> expected = read_metrics(ref_dir), got = read_metrics(dir);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(got[i].step, expected[i].step) << "line " << i;
    EXPECT_EQ(got[i].train_loss, expected[i].train_loss) << "step " << expected[i].step;
    EXPECT_EQ(got[i].test_loss, expected[i].test_loss) << "step " << expected[i].step;
    EXPECT_EQ(got[i].lr, expected[i].lr) << "step " << expected[i].step;
  }
  expect_same_tensors(latest, ref_dir / "ckpt" / "latest.safetensors");
  expect_same_tensors(dir / "ckpt" / "step_200.safetensors",
                      ref_dir / "ckpt" / "step_200.safetensors");
  fs::remove_all(root);
}

}  // namespace
}  // namespace mesalab
