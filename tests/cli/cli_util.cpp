#include "cli/cli_util.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mesalab::testing {

namespace fs = std::filesystem;

Result run_mesalab(const fs::path& dir, const std::string& args, const std::string& env) {
  const fs::path out = dir / ".stdout", err = dir / ".stderr";
  const std::string cmd = "cd '" + dir.string() + "' && " + (env.empty() ? "" : env + " ") + "'" +
                          std::string(MESALAB_BINARY) + "' " + args + " >'" + out.string() +
                          "' 2>'" + err.string() + "'";
  Result r;
  r.raw_status = std::system(cmd.c_str());
  r.exited = r.raw_status != -1 && WIFEXITED(r.raw_status) && !WIFSIGNALED(r.raw_status);
  r.code = r.exited ? WEXITSTATUS(r.raw_status) : -1;
  r.out = read_all(out);
  r.err = read_all(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

fs::path make_temp_dir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  return lines;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string describe(const Result& r) {
  return "exit " + std::to_string(r.code) + " (status " + std::to_string(r.raw_status) +
         "), stdout:\n" + r.out + "\nstderr:\n" + r.err;
}

}  // namespace mesalab::testing
