// A figure is data first: the CSV holds every value drawn (to 1e-10 relative), the script is
// the only place the style lives, and the renders are a by-product a user can re-make with
// `gnuplot <stem>.gp`. Renders are made under temporary names and renamed, so a gnuplot that
// dies half-way never leaves a half-written svg or png under the final name.
#include "report/figure.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <system_error>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/figure_script.hpp"
#include "report/gnuplot.hpp"

namespace mesalab::report {

namespace {

namespace fs = std::filesystem;

// gnuplot's CSV reader splits a quoted field that holds both a double quote and a comma, and
// a line break would end the row: such names could not be read back.
void check_text(const std::string& text, const std::string& what, const std::string& where) {
  if (text.find_first_of("\"\n\r") != std::string::npos)
    fail(
        "{}: {} '{}' contains a double quote or a line break, which the figure's CSV cannot "
        "hold (use single quotes)",
        where, what, text);
}

void validate(const Figure& figure, const std::string& stem) {
  const std::string name = figure.title.empty() ? stem : figure.title;
  if (stem.empty()) fail("figure '{}': empty file stem", name);
  if (stem.find('/') != std::string::npos || stem == "." || stem == "..")
    fail("figure '{}': the stem '{}' must be a file name without a directory", name, stem);
  if (figure.panels.empty()) fail("figure '{}': no panels", name);
  if (figure.columns < 0) fail("figure '{}': columns = {} (must be >= 0)", name, figure.columns);
  check_text(figure.title, "title", fmt::format("figure '{}'", name));
  std::set<std::string> titles;
  for (const Panel& p : figure.panels) {
    const std::string where = fmt::format("figure '{}', panel '{}'", name, p.title);
    check_text(p.title, "title", where);
    check_text(p.xlabel, "x label", where);
    check_text(p.ylabel, "y label", where);
    if (!titles.insert(p.title).second)
      fail("{}: two panels have this title (titles name the panels' rows in the CSV)", where);
    if (is_heatmap(p)) {
      const Heatmap& h = p.heatmap;
      if (!p.series.empty()) fail("{}: has both a heat map and series", where);
      if (h.rows <= 0 || h.cols <= 0)
        fail("{}: heat map of {} x {} cells (both must be >= 1)", where, h.rows, h.cols);
      if (h.values.size() != size_t(h.rows) * size_t(h.cols))
        fail("{}: heat map has {} values for {} x {} cells", where, h.values.size(), h.rows,
             h.cols);
      continue;
    }
    if (p.series.empty()) fail("{}: has neither series nor a heat map", where);
    std::set<std::string> names;
    for (const Series& s : p.series) {
      check_text(s.name, "series name", where);
      if (!names.insert(s.name).second) fail("{}: two series are named '{}'", where, s.name);
      if (s.x.size() != s.y.size())
        fail("{}, series '{}': {} x values but {} y values", where, s.name, s.x.size(), s.y.size());
    }
  }
}

// Always quoted (a title may hold commas or start with gnuplot's comment character '#').
std::string csv_text(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string csv_number(double v) { return fmt::format("{:.10g}", v); }

// Long format, one line per point or heat-map cell; rows receives where each panel's lines are.
std::string figure_csv(const Figure& figure, std::vector<PanelRows>& rows) {
  std::string csv = "panel,series,x,y,value\n";
  size_t line = 0;
  for (const Panel& p : figure.panels) {
    PanelRows& r = rows.emplace_back();
    const std::string panel = csv_text(p.title);
    if (is_heatmap(p)) {
      const Heatmap& h = p.heatmap;
      r.heatmap = {line, h.values.size()};
      for (int i = 0; i < h.rows; ++i)
        for (int j = 0; j < h.cols; ++j)
          csv += fmt::format("{},\"heatmap\",{},{},{}\n", panel, j, i,
                             csv_number(h.values[size_t(i) * h.cols + j]));
      line += h.values.size();
      continue;
    }
    for (const Series& s : p.series) {
      r.series.push_back({line, s.x.size()});
      const std::string series = csv_text(s.name);
      for (size_t i = 0; i < s.x.size(); ++i)
        csv += fmt::format("{},{},{},{},\n", panel, series, csv_number(s.x[i]), csv_number(s.y[i]));
      line += s.x.size();
    }
  }
  return csv;
}

// `text` as one shell word, quoted only when needed (for the hint printed to the user).
std::string shell_word(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789_./+-:=@%,") == std::string::npos)
    return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs the script with outstem set to a temporary name, checks both renders, and renames them
// into place. Returns why that failed ("" on success); temporary files never stay behind.
std::string render(const FigureFiles& files, const fs::path& dir, const std::string& stem,
                   const std::string& program) {
  const std::string outstem = fmt::format("{}.render.{}", stem, ::getpid());
  const fs::path svg = dir / (outstem + ".svg"), png = dir / (outstem + ".png");
  const GnuplotRun run =
      run_gnuplot(program, dir, "./" + stem + ".gp", "outstem", outstem, dir / (outstem + ".log"));
  std::string failure = run.failure;
  std::error_code ec;
  for (const fs::path& out : {svg, png}) {
    if (!failure.empty()) break;
    if (!fs::is_regular_file(out) || fs::file_size(out, ec) == 0)
      failure = fmt::format("gnuplot wrote no {}", out.filename().string());
  }
  if (failure.empty()) {
    fs::rename(svg, files.svg, ec);
    if (!ec) fs::rename(png, files.png, ec);
    if (ec) failure = fmt::format("cannot move the renders into place: {}", ec.message());
  }
  fs::remove(svg, ec);
  fs::remove(png, ec);
  return failure;
}

}  // namespace

FigureFiles write_figure(const Figure& figure, const std::filesystem::path& dir,
                         const std::string& stem, const RenderOptions& options) {
  validate(figure, stem);
  const fs::path where = dir.empty() ? fs::path(".") : dir;
  std::error_code ec;
  fs::create_directories(where, ec);
  if (ec) fail_runtime("cannot create the figure directory {}: {}", where.string(), ec.message());
  FigureFiles files{where / (stem + ".csv"), where / (stem + ".gp"), where / (stem + ".svg"),
                    where / (stem + ".png")};
  std::vector<PanelRows> rows;
  write_file_atomic(files.csv, figure_csv(figure, rows));
  write_file_atomic(files.script, figure_script(figure, stem, rows));
  const std::string failure = options.render ? render(files, where, stem, options.gnuplot) : "";
  if (options.render && failure.empty()) {
    files.rendered = true;
    return files;
  }
  // Renders of an earlier version of this figure would no longer match its data.
  fs::remove(files.svg, ec);
  fs::remove(files.png, ec);
  if (!options.render) return files;
  files.warning = fmt::format("mesalab: {}: wrote {} and {}; render them with: cd {} && gnuplot {}",
                              failure, files.csv.string(), files.script.filename().string(),
                              shell_word(where.string()), shell_word(stem + ".gp"));
  fmt::print(stderr, "{}\n", files.warning);
  return files;
}

}  // namespace mesalab::report
