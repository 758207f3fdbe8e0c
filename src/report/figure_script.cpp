// One style for every figure, written out in full in each script so that a user can restyle
// a figure without mesalab: the terminal and the panel loop are the same for both renders
// (a `do for` over "svg png"), and each panel starts from `reset` plus the shared style.
#include "report/figure_script.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report/gnuplot.hpp"

namespace mesalab::report {

namespace {

// Okabe-Ito colours (colour-blind safe), black last but one; series i uses linetype i mod 8.
constexpr const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#999999"};

// Diverging blue-white-red (ColorBrewer RdBu), mapped onto the symmetric cbrange.
constexpr const char* kPalette =
    "(0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', "
    "1 '#67001F')";

constexpr int kPlotWidth = 660, kPlotHeight = 420;        // px of a curve panel without its key
constexpr int kHeatmapWidth = 460, kHeatmapHeight = 420;  // px of a heat-map panel
constexpr int kTitleHeight = 30;                          // px of the figure title

bool drawable(double v, bool log_axis) { return std::isfinite(v) && (!log_axis || v > 0.0); }

size_t drawable_points(const Series& s, const Panel& p) {
  size_t n = 0;
  for (size_t i = 0; i < s.x.size(); ++i) n += drawable(s.x[i], p.logx) && drawable(s.y[i], p.logy);
  return n;
}

// The key sits outside the plot, right of it: its width grows with the longest name.
int panel_width(const Panel& p) {
  if (is_heatmap(p)) return kHeatmapWidth;
  size_t longest = 0;
  for (const Series& s : p.series) longest = std::max(longest, s.name.size());
  return kPlotWidth + int(9.0 * double(longest));
}

// Dashed (dt 2) for references; after the 8 colours the cycle repeats with dotted (dt 3)
// and dash-dotted (dt 4) lines, so no two series of a panel look the same.
std::string dash_type(const Series& s, size_t index) {
  if (index < 8) return s.dashed ? " dt 2" : "";
  return s.dashed ? " dt 4" : " dt 3";
}

std::string column(int index, bool log_axis) {
  return fmt::format("({}(${}))", log_axis ? "positive" : "finite", index);
}

// `every ::first::last` counts the CSV's lines from 0, and line 0 is the header.
std::string every(const RowRange& r) {
  return fmt::format("every ::{}::{}", r.first + 1, r.first + r.count);
}

void append_labels(std::string& gp, const Panel& p) {
  if (!p.title.empty()) gp += fmt::format("  set title {} noenhanced\n", gnuplot_quote(p.title));
  if (!p.xlabel.empty()) gp += fmt::format("  set xlabel {} noenhanced\n", gnuplot_quote(p.xlabel));
  if (!p.ylabel.empty()) gp += fmt::format("  set ylabel {} noenhanced\n", gnuplot_quote(p.ylabel));
}

void append_curves(std::string& gp, const Panel& p, const PanelRows& rows) {
  if (p.logx) gp += "  set logscale x\n";
  if (p.logy) gp += "  set logscale y\n";
  std::vector<std::string> clauses;
  for (size_t i = 0; i < p.series.size(); ++i) {
    const Series& s = p.series[i];
    const RowRange& r = rows.series[i];
    const size_t points = drawable_points(s, p);
    if (points == 0) {
      gp += fmt::format("  # series {}: no drawable points (non-finite, or <= 0 on a log axis)\n",
                        gnuplot_quote(s.name));
      continue;
    }
    gp += fmt::format("  # line {}: series {}{}, CSV lines {}-{}\n", clauses.size() + 1,
                      gnuplot_quote(s.name), s.dashed ? " (dashed)" : "", r.first + 1,
                      r.first + r.count);
    clauses.push_back(fmt::format("datafile {} using {}:{} with {} lt {}{} title {} noenhanced",
                                  every(r), column(3, p.logx), column(4, p.logy),
                                  points > 1 ? "lines" : "points", i % 8 + 1, dash_type(s, i),
                                  gnuplot_quote(s.name)));
  }
  if (clauses.empty()) {
    gp +=
        "  unset logscale\n"
        "  set label 1 'no drawable points' at graph 0.5, 0.5 center\n"
        "  set xrange [0:1]\n"
        "  set yrange [0:1]\n"
        "  plot NaN notitle\n";
    return;
  }
  gp += "  plot";
  for (size_t i = 0; i < clauses.size(); ++i)
    gp += fmt::format(" \\\n    {}{}", clauses[i], i + 1 < clauses.size() ? "," : "");
  gp += "\n";
}

// Integer tics at most ~10 per axis: every 1, 2, 5, 10, 20, 50, ... cells.
int tic_step(int cells) {
  for (int decade = 1;; decade *= 10)
    for (int step : {decade, 2 * decade, 5 * decade})
      if (cells <= 10 * step) return step;
}

void append_heatmap(std::string& gp, const Heatmap& h, const RowRange& r) {
  double max_abs = 0.0;
  for (double v : h.values)
    if (std::isfinite(v)) max_abs = std::max(max_abs, std::abs(v));
  if (max_abs == 0.0) max_abs = 1.0;
  gp += fmt::format(
      "  # heat map, {} rows x {} columns, CSV lines {}-{} (x = column, y = row, value)\n"
      "  unset key\n"
      "  unset grid\n"
      "  set palette defined {}\n"
      "  set cbrange [{:.10g}:{:.10g}]\n"
      "  set xrange [-0.5:{}]\n"
      "  set yrange [{}:-0.5]\n"
      "  set xtics 0, {}\n"
      "  set ytics 0, {}\n"
      "  set size ratio -1\n"
      "  plot datafile {} using 3:4:{} with image\n",
      h.rows, h.cols, r.first + 1, r.first + r.count, kPalette, -max_abs, max_abs, h.cols - 0.5,
      h.rows - 0.5, tic_step(h.cols), tic_step(h.rows), every(r), column(5, false));
}

}  // namespace

bool is_heatmap(const Panel& panel) {
  return panel.heatmap.rows != 0 || panel.heatmap.cols != 0 || !panel.heatmap.values.empty();
}

std::string figure_script(const Figure& figure, const std::string& stem,
                          const std::vector<PanelRows>& rows) {
  const int panels = int(figure.panels.size());
  const int columns = figure.columns > 0
                          ? std::min(figure.columns, panels)
                          : (panels <= 3 ? panels : int(std::ceil(std::sqrt(double(panels)))));
  const int grid_rows = (panels + columns - 1) / columns;
  int cell_width = 0, cell_height = 0;
  for (const Panel& p : figure.panels) {
    cell_width = std::max(cell_width, panel_width(p));
    cell_height = std::max(cell_height, is_heatmap(p) ? kHeatmapHeight : kPlotHeight);
  }
  const int width = columns * cell_width;
  const int height = grid_rows * cell_height + (figure.title.empty() ? 0 : kTitleHeight);

  std::string gp = fmt::format(
      "# {}\n"
      "# Written by mesalab. Data: {}.csv, columns panel,series,x,y,value: one line per point\n"
      "# of a curve (value empty), or per heat-map cell (series \"heatmap\", x = column,\n"
      "# y = row). Running gnuplot on {}.gp in this directory writes {}.svg and {}.png.\n"
      "# Each plot clause picks its lines with `every ::first::last`, counting the CSV's lines\n"
      "# from 0 = the header.\n"
      "if (!exists(\"outstem\")) outstem = {}\n"
      "datafile = {}\n\n",
      figure.title.empty() ? stem : figure.title, stem, stem, stem, stem, gnuplot_quote(stem),
      gnuplot_quote(stem + ".csv"));
  gp +=
      "# Colour cycle (Okabe-Ito, colour-blind safe): series i of a panel uses linetype i (mod "
      "8).\n";
  for (int i = 0; i < 8; ++i)
    gp += fmt::format("set linetype {} lc rgb '{}' lw 2 pt 7 ps 0.6\n", i + 1, kColours[i]);
  gp +=
      "set linetype cycle 8\n"
      "# Points that cannot be drawn (non-finite, or <= 0 on a log axis) are left out.\n"
      "finite(v) = (v == v && abs(v) < 1e308) ? v : NaN\n"
      "positive(v) = (v > 0 && v < 1e308) ? v : NaN\n"
      "# The style of every panel, applied after each panel's `reset`.\n"
      "style = \"set datafile separator ','; set style line 100 lc rgb '#D0D0D0' lw 1 dt 1; \\\n"
      "  set grid ls 100; set key outside right top Left reverse nobox; set tics out "
      "nomirror\"\n\n";
  gp += "do for [fmt in \"svg png\"] {\n";
  gp += fmt::format(
      "  if (fmt eq \"svg\") {{\n"
      "    set terminal svg size {0},{1} enhanced font 'Helvetica,12' background rgb 'white'\n"
      "  }} else {{\n"
      "    set terminal pngcairo size {0},{1} enhanced font 'Helvetica,12' background rgb "
      "'white'\n"
      "  }}\n"
      "  set output outstem.'.'.fmt\n"
      "  set multiplot layout {2},{3}{4}\n",
      width, height, grid_rows, columns,
      figure.title.empty()
          ? ""
          : fmt::format(" title {} noenhanced font ',14'", gnuplot_quote(figure.title)));
  for (size_t i = 0; i < figure.panels.size(); ++i) {
    const Panel& p = figure.panels[i];
    gp += fmt::format("\n  # panel {}: {}\n  reset\n  eval style\n", i + 1, gnuplot_quote(p.title));
    append_labels(gp, p);
    if (is_heatmap(p))
      append_heatmap(gp, p.heatmap, rows[i].heatmap);
    else
      append_curves(gp, p, rows[i]);
  }
  gp += "\n  unset multiplot\n  unset output\n}\n";
  return gp;
}

}  // namespace mesalab::report
