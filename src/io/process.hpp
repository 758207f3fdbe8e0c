#pragma once
// Child processes without a shell: the training runs of `mesalab reproduce` (the binary runs
// itself, so a failing run cannot take the others down) and gnuplot.
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mesalab {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH unless it contains a '/'
  std::filesystem::path cwd;      // empty: the caller's
  std::filesystem::path output;   // stdout and stderr appended to this file; empty: inherited
};

// A started child; wait() or poll() reaps it.
class ChildProcess {
 public:
  // Throws Error (runtime) if the program cannot be started, naming it and the reason.
  static ChildProcess start(const ProcessSpec& spec);
  // The exit status once the child has ended (128 + signal number if killed), else nullopt.
  std::optional<int> poll();
  int wait();
  pid_t pid() const { return pid_; }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// Starts and waits; the exit status as above.
int run_process(const ProcessSpec& spec);

// The path of the running executable (/proc/self/exe resolved).
std::filesystem::path self_executable();

}  // namespace mesalab
