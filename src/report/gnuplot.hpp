#pragma once
// Running gnuplot on a script as a child process (io/process.hpp: no shell, so directory and
// file names may hold spaces or quotes) in the script's directory, and turning what went
// wrong into one line for the user. Used by write_figure.
#include <filesystem>
#include <string>

namespace mesalab::report {

struct GnuplotRun {
  bool ok = false;      // the program ran and exited with status 0
  std::string failure;  // why not, one line: "gnuplot not found (...)", "gnuplot failed (...)"
};

// Runs `<program> -e "<variable>='<value>'" <script>` with `dir` as the working directory
// and waits for it; its output goes to `log` (in `dir`, removed afterwards) and the last
// lines of it into `failure`. A program name without a '/' is looked up on PATH; a relative
// path with a '/' is taken relative to the caller's directory.
GnuplotRun run_gnuplot(const std::string& program, const std::filesystem::path& dir,
                       const std::string& script, const std::string& variable,
                       const std::string& value, const std::filesystem::path& log);

// `text` as a gnuplot single-quoted string: 'it''s' (no escapes are interpreted inside).
std::string gnuplot_quote(const std::string& text);

}  // namespace mesalab::report
