#pragma once
// The gnuplot script of a figure (see figure.hpp), kept apart from the file handling: a pure
// function of the figure and of where each series sits in the CSV.
#include <cstddef>
#include <string>
#include <vector>

#include "report/figure.hpp"

namespace mesalab::report {

// Data rows [first, first + count) of the CSV, 0-based and not counting the header.
struct RowRange {
  size_t first = 0, count = 0;
};

// Where a panel's data sits in the CSV: one range per series, or the heat map's cells.
struct PanelRows {
  std::vector<RowRange> series;
  RowRange heatmap;
};

// True if the panel is drawn as a heat map (any of its heat-map fields is set).
bool is_heatmap(const Panel& panel);

// A self-contained gnuplot 5.4 script, run in the CSV's directory, that reads <stem>.csv and
// writes <outstem>.svg and <outstem>.png; outstem defaults to `stem` and can be set from the
// command line (gnuplot -e "outstem='...'"). rows[i] locates panel i's data.
std::string figure_script(const Figure& figure, const std::string& stem,
                          const std::vector<PanelRows>& rows);

}  // namespace mesalab::report
