#pragma once
// Shared helpers of the end-to-end CLI tests: run the mesalab binary in a directory and
// capture its stdout, stderr and exit status; a fixture with a fresh temporary directory per
// test; read files; split and search output.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mesalab::testing {

// Outcome of one run of the mesalab binary.
struct Result {
  int raw_status = 0;   // as returned by std::system
  bool exited = false;  // terminated normally (no signal) ...
  int code = -1;        // ... with this exit status; -1 if not exited
  std::string out, err;
  std::string all() const { return out + err; }
};

// Runs `mesalab <args>` (args are passed through the shell as written) with `dir` as the
// working directory. stdout and stderr go to dir/.stdout and dir/.stderr, which are read
// back into the Result and removed. `env`: shell variable assignments for the run only,
// e.g. "MESALAB_GNUPLOT=/nonexistent".
Result run_mesalab(const std::filesystem::path& dir, const std::string& args,
                   const std::string& env = "");

// A fresh directory temp_directory_path()/<prefix>XXXXXX; an empty path if mkdtemp fails.
std::filesystem::path make_temp_dir(const std::string& prefix);

// Whole file as bytes ("" if it cannot be opened).
std::string read_all(const std::filesystem::path& path);

// The lines of `text` that hold something other than spaces, tabs and '\r'.
std::vector<std::string> nonempty_lines(const std::string& text);

bool contains(const std::string& haystack, const std::string& needle);

// Exit status and both streams, to print when an expectation on a Result fails.
std::string describe(const Result& r);

// Every test gets a fresh directory root_ (temp_directory_path()/<prefix>XXXXXX), removed
// after the test; runs_ = root_/runs is only named, not created. mesalab() runs there.
class CliFixture : public ::testing::Test {
 protected:
  explicit CliFixture(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    root_ = make_temp_dir(prefix_);
    ASSERT_FALSE(root_.empty());
    runs_ = root_ / "runs";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Runs `mesalab <args>` (args are passed through the shell as written) in root_.
  Result mesalab(const std::string& args, const std::string& env = "") const {
    return run_mesalab(root_, args, env);
  }

  std::filesystem::path root_, runs_;

 private:
  std::string prefix_;
};

}  // namespace mesalab::testing
