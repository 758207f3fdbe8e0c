// Reproducibility through the mesalab binary: the same config gives bit-identical
// checkpoints (every tensor: parameters, Adam moments, loss accumulator) and identical
// metrics with train.threads=1 and train.threads=2, and across repeated runs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Every layer kind, a batch that does not split evenly into per-thread chunks, and
// checkpoints in the middle and at the end.
const std::vector<std::string> kSettings = {"name=det",
                                            "data.dim=4",
                                            "data.seq_len=12",
                                            "model.layers=3",
                                            "model.layer=[\"lsa\", \"softmax\", \"mesa\"]",
                                            "model.heads=2",
                                            "model.key_size=6",
                                            "train.batch_size=21",
                                            "train.test_batches=2",
                                            "train.test_batch_size=13",
                                            "train.steps=20",
                                            "train.eval_every=5",
                                            "train.checkpoint_every=10",
                                            "optim.warmup_steps=3",
                                            "optim.lr=0.003"};

// Runs `mesalab train` to completion with the given thread count; returns the run dir.
fs::path train_run(const fs::path& root, const std::string& tag, int threads) {
  const fs::path runs = root / tag;
  std::vector<std::string> storage = {MESALAB_BINARY, "train", "--quiet"};
  for (const std::string& s : kSettings) storage.insert(storage.end(), {"--set", s});
  storage.insert(storage.end(), {"--set", "train.runs_dir=" + runs.string(), "--set",
                                 "train.threads=" + std::to_string(threads)});
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const fs::path log = root / (tag + ".log");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(log);
  return runs / "det";
}

// Metrics without the wall-clock field.
std::vector<json> metrics_without_time(const fs::path& run_dir) {
  std::vector<json> lines;
  std::istringstream in(read_file(run_dir / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    j.erase("elapsed_s");
    j.erase("phase_s");
    lines.push_back(j);
  }
  return lines;
}

void expect_bit_identical(const fs::path& a, const fs::path& b, const std::string& what) {
  SCOPED_TRACE(what);
  for (const char* file : {"step_10.safetensors", "step_20.safetensors", "latest.safetensors"}) {
    SCOPED_TRACE(file);
    const SafetensorsFile fa = load_safetensors(a / "ckpt" / file);
    const SafetensorsFile fb = load_safetensors(b / "ckpt" / file);
    ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
    ASSERT_GT(fa.tensors.size(), 0u);
    for (size_t i = 0; i < fa.tensors.size(); ++i) {
      ASSERT_EQ(fa.tensors[i].name, fb.tensors[i].name);
      EXPECT_EQ(fa.tensors[i].shape, fb.tensors[i].shape);
      EXPECT_TRUE(fa.tensors[i].bytes == fb.tensors[i].bytes)
          << "tensor " << fa.tensors[i].name << " differs";
    }
    EXPECT_EQ(fa.metadata.at("step"), fb.metadata.at("step"));
  }
  EXPECT_EQ(metrics_without_time(a), metrics_without_time(b));
}

TEST(CliDeterminism, OneAndTwoThreadsAndRepeatedRunsGiveBitIdenticalCheckpoints) {
  std::string pattern = (fs::temp_directory_path() / "mesalab_determinism_XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path root = pattern;
  const fs::path one = train_run(root, "threads1", 1);
  const fs::path two = train_run(root, "threads2", 2);
  const fs::path one_again = train_run(root, "threads1_again", 1);
  const fs::path two_again = train_run(root, "threads2_again", 2);
  expect_bit_identical(one, two, "threads=1 vs threads=2");
  expect_bit_identical(one, one_again, "threads=1, repeated");
  expect_bit_identical(two, two_again, "threads=2, repeated");
  fs::remove_all(root);
}

}  // namespace
}  // namespace mesalab
