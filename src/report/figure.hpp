#pragma once
// Figures from data: every figure is written as three files side by side plus its renders,
//   <dir>/<stem>.csv   the data, long format (one row per point / matrix cell),
//   <dir>/<stem>.gp    a gnuplot script that reads the CSV and writes both renders,
//   <dir>/<stem>.svg, <dir>/<stem>.png   made by running gnuplot on the script,
// so a user restyles a figure by editing the .gp file and running `gnuplot <stem>.gp` in
// <dir>. If gnuplot cannot be run, the CSV and script are still written and a one-line
// warning says how to render them. One style for every figure of mesalab: labelled axes,
// legends, log scales where asked, sized to be readable at 100% zoom.
#include <filesystem>
#include <string>
#include <vector>

namespace mesalab::report {

// One curve: points (x[i], y[i]); x and y have the same length. Non-positive y on a log
// axis and non-finite values are left out of the drawing (but kept in the CSV).
struct Series {
  std::string name;  // legend entry; unique within its panel
  std::vector<double> x, y;
  bool dashed = false;  // reference lines (baselines) are dashed
};

// A matrix drawn as a heat map with a colour bar; values row-major (rows x cols), row 0 at
// the top. Symmetric colour range [-max|v|, max|v|] with a diverging palette.
struct Heatmap {
  int rows = 0, cols = 0;
  std::vector<double> values;
};

// One plot area: either curves or a heat map, not both (a panel with any heat-map field set
// is a heat map). Titles, labels and series names may not hold double quotes or line breaks
// (gnuplot could not read them back from the CSV); panel titles are unique within a figure.
struct Panel {
  std::string title;
  std::string xlabel, ylabel;  // with units, e.g. "time step t", "test loss (MSE/2)"
  bool logx = false, logy = false;
  std::vector<Series> series;
  Heatmap heatmap;
};

struct Figure {
  std::string title;
  std::vector<Panel> panels;  // laid out in a grid, `columns` wide (0: automatic)
  int columns = 0;
};

struct RenderOptions {
  std::string gnuplot = "gnuplot";  // program to run (looked up on PATH)
  bool render = true;               // false: write the CSV and script only
};

struct FigureFiles {
  std::filesystem::path csv, script, svg, png;
  bool rendered = false;  // svg and png were written by gnuplot
  std::string warning;    // why not (empty if rendered or render was false)
};

// Writes the CSV and script (atomically) into `dir` (created if missing) and renders them.
// CSV header: panel,series,x,y,value; a curve point is (panel title, series name, x, y, empty),
// a heat-map cell (panel title, "heatmap", column, row, value).
// Throws Error (bad input) for an empty figure or stem, a panel with neither series nor heat
// map, mismatched x/y lengths or a heat map whose values are not rows x cols; a missing or
// failing gnuplot is not an error: the result says so in `warning`, the same line is printed
// on stderr, and renders left by an earlier call are removed (they would not match the data).
FigureFiles write_figure(const Figure& figure, const std::filesystem::path& dir,
                         const std::string& stem, const RenderOptions& options = {});

}  // namespace mesalab::report
