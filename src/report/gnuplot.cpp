#include "report/gnuplot.hpp"

#include <fmt/format.h>

#include <system_error>
#include <vector>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/process.hpp"

namespace mesalab::report {

namespace {

// The last few non-empty lines of gnuplot's output (where its error is), on one line.
std::string last_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    if (line.find_first_not_of(" \t\r^") != std::string::npos) lines.push_back(line);
    begin = end + 1;
  }
  std::string summary;
  for (size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i)
    summary += (summary.empty() ? "" : " | ") + lines[i];
  if (summary.size() > 400) summary = summary.substr(0, 400) + "...";
  return summary;
}

}  // namespace

std::string gnuplot_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

GnuplotRun run_gnuplot(const std::string& program, const std::filesystem::path& dir,
                       const std::string& script, const std::string& variable,
                       const std::string& value, const std::filesystem::path& log) {
  if (program.empty()) return {false, "no gnuplot program given"};
  const ProcessSpec spec{{program, "-e", variable + "=" + gnuplot_quote(value), script}, dir, log};
  std::error_code ec;
  int status = 0;
  try {
    status = run_process(spec);
  } catch (const Error& e) {
    // io/process names the program and the OS reason, e.g. "No such file or directory".
    std::filesystem::remove(log, ec);
    const std::string reason = e.what(),
                      missing =
                          std::make_error_code(std::errc::no_such_file_or_directory).message();
    if (reason.find(missing) != std::string::npos)
      return {false, fmt::format("gnuplot not found ('{}')", program)};
    return {false, fmt::format("cannot run gnuplot ({})", reason)};
  }
  const std::string said = std::filesystem::exists(log) ? last_lines(read_file(log)) : "";
  std::filesystem::remove(log, ec);
  if (status == 0) return {true, ""};
  // posix_spawnp may report a program it could not execute as exit status 127 of the child.
  if (status == 127 && said.empty())
    return {false, fmt::format("gnuplot not found ('{}')", program)};
  return {false, fmt::format("gnuplot failed (exit status {}{}{})", status,
                             said.empty() ? "" : ": ", said)};
}

}  // namespace mesalab::report
