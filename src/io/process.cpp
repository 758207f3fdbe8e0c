#include "io/process.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

extern char** environ;

namespace mesalab {

namespace {

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// posix_spawn file actions that RAII-destroy themselves.
struct FileActions {
  posix_spawn_file_actions_t actions;
  FileActions() { posix_spawn_file_actions_init(&actions); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions); }
};

}  // namespace

ChildProcess ChildProcess::start(const ProcessSpec& spec) {
  if (spec.argv.empty()) fail("cannot start a process without a program");
  // A relative program path would be resolved after the chdir action: make it absolute.
  std::vector<std::string> args = spec.argv;
  if (args[0].find('/') != std::string::npos) args[0] = std::filesystem::absolute(args[0]).string();
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  FileActions fa;
  // Absolute, since the chdir action runs first.
  const std::string cwd = spec.cwd.string(),
                    output =
                        spec.output.empty() ? "" : std::filesystem::absolute(spec.output).string();
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa.actions, cwd.c_str());
  if (!output.empty()) {
    posix_spawn_file_actions_addopen(&fa.actions, STDOUT_FILENO, output.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND,
                                     0644);  // no O_CLOEXEC: it is the child's stdout
    posix_spawn_file_actions_adddup2(&fa.actions, STDOUT_FILENO, STDERR_FILENO);
  }
  pid_t pid = -1;
  const int err = posix_spawnp(&pid, argv[0], &fa.actions, nullptr, argv.data(), environ);
  if (err != 0) fail_runtime("cannot run {}: {}", spec.argv[0], std::strerror(err));
  return ChildProcess(pid);
}

std::optional<int> ChildProcess::poll() {
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  if (r < 0) fail_runtime("waitpid({}): {}", pid_, std::strerror(errno));
  return exit_status(status);
}

int ChildProcess::wait() {
  int status = 0;
  pid_t r;
  do r = waitpid(pid_, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) fail_runtime("waitpid({}): {}", pid_, std::strerror(errno));
  return exit_status(status);
}

int run_process(const ProcessSpec& spec) { return ChildProcess::start(spec).wait(); }

std::filesystem::path self_executable() { return std::filesystem::read_symlink("/proc/self/exe"); }

}  // namespace mesalab
