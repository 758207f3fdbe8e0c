// Tests of report/figure: the CSV holds exactly the data drawn (parsed back), gnuplot renders
// both formats with every legend entry, the script alone re-renders the same svg, every plot
// clause selects exactly its series' lines (checked by gnuplot itself), a missing or failing
// gnuplot leaves the data and script and says how to render them, and bad figures are
// refused with the name of the problem.
#include "report/figure.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "cli/cli_util.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "test_util.hpp"

namespace mesalab::report {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::read_all;

// RFC 4180 fields of every line (quoted fields may hold commas and doubled quotes).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false, row_open = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = row_open = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
      row_open = true;
    } else if (c == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
      row_open = false;
    } else {
      field += c;
      row_open = true;
    }
  }
  if (row_open) rows.back().push_back(field);
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

void expect_number(const std::string& field, double expected, const std::string& what) {
  const double parsed = std::strtod(field.c_str(), nullptr);
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(parsed)) << what << ": '" << field << "'";
    return;
  }
  EXPECT_LE(std::abs(parsed - expected), 1e-9 * std::abs(expected))
      << what << ": '" << field << "'";
}

// Values over six decades, as losses are; one curve with a comma in its name, one dashed.
Figure sample_figure() {
  const std::vector<double> noise = testing::random_vector(60, 3);
  Panel curves{"loss, per step", "time step t", "test loss (MSE/2)", false, true};
  Series model{"model"}, reference{"least squares, all pairs", {}, {}, true};
  for (int t = 1; t <= 30; ++t) {
    model.x.push_back(t);
    model.y.push_back(std::exp(-0.4 * t + noise[size_t(t - 1)]));
    reference.x.push_back(t);
    reference.y.push_back(std::exp(-0.2 * t + noise[size_t(t + 29)]) / 3.0);
  }
  curves.series = {model, reference};
  Panel weights{"weights", "key dimension", "query dimension"};
  weights.heatmap = {3, 5, testing::random_vector(15, 4)};
  return {"sample figure", {curves, weights}};
}

class FigureTest : public testing::CliFixture {
 protected:
  FigureTest() : CliFixture("mesalab_figure_") {}
  fs::path dir() const { return root_ / "figure dir"; }  // a space, as users' paths may have
};

TEST_F(FigureTest, CsvHoldsEveryValueDrawn) {
  Figure figure = sample_figure();
  figure.panels[0].series[1].y[4] = NAN;  // kept in the CSV, left out of the drawing
  const FigureFiles files = write_figure(figure, dir(), "sample", {.render = false});
  EXPECT_FALSE(files.rendered);
  EXPECT_TRUE(files.warning.empty()) << files.warning;
  EXPECT_FALSE(fs::exists(files.svg));
  const auto rows = parse_csv(read_all(files.csv));
  ASSERT_EQ(rows.size(), 1u + 60u + 15u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"panel", "series", "x", "y", "value"}));
  size_t line = 1;
  for (const Series& s : figure.panels[0].series)
    for (size_t i = 0; i < s.x.size(); ++i, ++line) {
      const std::string what = s.name + " point " + std::to_string(i);
      ASSERT_EQ(rows[line].size(), 5u) << what;
      EXPECT_EQ(rows[line][0], "loss, per step") << what;
      EXPECT_EQ(rows[line][1], s.name) << what;
      expect_number(rows[line][2], s.x[i], what + " x");
      expect_number(rows[line][3], s.y[i], what + " y");
      EXPECT_EQ(rows[line][4], "") << what;
    }
  const Heatmap& h = figure.panels[1].heatmap;
  for (int r = 0; r < h.rows; ++r)
    for (int c = 0; c < h.cols; ++c, ++line) {
      const std::string what = "cell " + std::to_string(r) + "," + std::to_string(c);
      ASSERT_EQ(rows[line].size(), 5u) << what;
      EXPECT_EQ(rows[line][0], "weights");
      EXPECT_EQ(rows[line][1], "heatmap");
      EXPECT_EQ(rows[line][2], std::to_string(c)) << what;
      EXPECT_EQ(rows[line][3], std::to_string(r)) << what;
      expect_number(rows[line][4], h.values[size_t(r) * h.cols + c], what);
    }
}

TEST_F(FigureTest, RendersSvgAndPngWithEveryLegendEntry) {
  Figure figure = sample_figure();
  // Nothing of this series can be drawn on a log axis, so it must not reach the legend:
  // this is what shows that the legend check below can fail.
  figure.panels[0].series.push_back({"never drawn", {1, 2, 3}, {0.0, -1.0, NAN}});
  const FigureFiles files = write_figure(figure, dir(), "sample fig");
  ASSERT_TRUE(files.rendered) << files.warning;
  EXPECT_TRUE(files.warning.empty());
  const std::string svg = read_all(files.svg), png = read_all(files.png);
  ASSERT_FALSE(svg.empty());
  ASSERT_FALSE(png.empty());
  EXPECT_TRUE(svg.rfind("<?xml", 0) == 0 || svg.rfind("<svg", 0) == 0) << svg.substr(0, 100);
  EXPECT_TRUE(contains(svg, "</svg>"));
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  for (const char* text : {"model", "least squares, all pairs", "loss, per step", "weights",
                           "sample figure", "time step t", "test loss (MSE/2)"})
    EXPECT_TRUE(contains(svg, text)) << "'" << text << "' is not in the svg";
  EXPECT_TRUE(contains(svg, "<image")) << "the heat map is drawn as an image";
  EXPECT_FALSE(contains(svg, "never drawn"));
  // Only the figure's four files: no render or log left under a temporary name.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir())) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"sample fig.csv", "sample fig.gp", "sample fig.png",
                                             "sample fig.svg"}));
}

TEST_F(FigureTest, ScriptAloneRendersTheSameFigure) {
  const FigureFiles files = write_figure(sample_figure(), dir(), "sample fig");
  ASSERT_TRUE(files.rendered) << files.warning;
  const std::string svg = read_all(files.svg), png = read_all(files.png);
  fs::remove(files.svg);
  fs::remove(files.png);
  const std::string command = "cd '" + dir().string() + "' && gnuplot 'sample fig.gp' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  EXPECT_EQ(read_all(files.svg), svg);
  EXPECT_EQ(read_all(files.png), png);
}

// gnuplot itself reads back what every clause of the script selects (`every ::a::b`, line 0 =
// the header), which must be exactly that series' points, or the heat map's cells.
TEST_F(FigureTest, EveryPlotClauseSelectsExactlyItsSeries) {
  const Figure figure = sample_figure();
  const FigureFiles files = write_figure(figure, dir(), "sample", {.render = false});
  const std::string script = read_all(files.script);
  const std::regex clause(R"(every ::(\d+)::(\d+) using [^\n]*?(?:title '([^']*)'|with image))");
  std::vector<std::string> selected;
  std::string probe = "set datafile separator ','\n";
  int index = 0;
  for (std::sregex_iterator it(script.begin(), script.end(), clause), end; it != end; ++it) {
    const std::string every = "every ::" + (*it)[1].str() + "::" + (*it)[2].str();
    selected.push_back((*it)[3].matched ? (*it)[3].str() : "heatmap");
    probe += "set table 'clause" + std::to_string(index++) + ".txt'\nplot 'sample.csv' " + every +
             " using 3:4:" + ((*it)[3].matched ? "4" : "5") + " with table\nunset table\n";
  }
  ASSERT_EQ(selected, (std::vector<std::string>{"model", "least squares, all pairs", "heatmap"}))
      << script;
  write_file_atomic(dir() / "probe.gp", probe);
  const std::string command = "cd '" + dir().string() + "' && gnuplot probe.gp";
  ASSERT_EQ(std::system(command.c_str()), 0) << probe;

  std::vector<std::vector<double>> expected;  // (x, y, y) per point, (col, row, value) per cell
  for (const Series& s : figure.panels[0].series)
    for (size_t i = 0; i < s.x.size(); ++i) expected.push_back({s.x[i], s.y[i], s.y[i]});
  const Heatmap& h = figure.panels[1].heatmap;
  for (int r = 0; r < h.rows; ++r)
    for (int c = 0; c < h.cols; ++c)
      expected.push_back({double(c), double(r), h.values[size_t(r) * h.cols + c]});
  std::vector<std::vector<double>> read;
  for (int i = 0; i < index; ++i)
    for (const std::string& line :
         testing::nonempty_lines(read_all(dir() / ("clause" + std::to_string(i) + ".txt")))) {
      std::vector<double> v(3);
      ASSERT_EQ(std::sscanf(line.c_str(), "%lf %lf %lf", &v[0], &v[1], &v[2]), 3) << line;
      read.push_back(v);
    }
  ASSERT_EQ(read.size(), expected.size());
  for (size_t i = 0; i < read.size(); ++i) {
    SCOPED_TRACE("point " + std::to_string(i));
    EXPECT_ALL_CLOSE(read[i].data(), expected[i].data(), 3, 1e-5);
  }
}

TEST_F(FigureTest, MissingGnuplotLeavesDataScriptAndHowToRender) {
  fs::create_directories(dir());
  write_file_atomic(dir() / "sample.svg", "<svg>an older figure</svg>");
  ::testing::internal::CaptureStderr();
  const FigureFiles files =
      write_figure(sample_figure(), dir(), "sample", {.gnuplot = "/nonexistent/gnuplot"});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(files.rendered);
  EXPECT_TRUE(contains(files.warning, "gnuplot not found")) << files.warning;
  EXPECT_TRUE(contains(files.warning, files.csv.string())) << files.warning;
  EXPECT_TRUE(
      contains(files.warning, "render them with: cd '" + dir().string() + "' && gnuplot sample.gp"))
      << files.warning;
  EXPECT_EQ(err, files.warning + "\n");
  EXPECT_TRUE(fs::exists(files.csv));
  EXPECT_TRUE(contains(read_all(files.script), "plot datafile"));
  // The older render no longer matches the data, so it is gone.
  EXPECT_FALSE(fs::exists(files.svg));
  EXPECT_FALSE(fs::exists(files.png));
}

TEST_F(FigureTest, FailingGnuplotReportsWhatItSaid) {
  const fs::path fake = root_ / "fake gnuplot";
  write_file_atomic(fake, "#!/bin/sh\necho 'line 7: all points undefined!' >&2\nexit 3\n");
  ::chmod(fake.c_str(), 0755);
  ::testing::internal::CaptureStderr();
  FigureFiles files = write_figure(sample_figure(), dir(), "sample", {.gnuplot = fake.string()});
  EXPECT_FALSE(files.rendered);
  EXPECT_TRUE(
      contains(files.warning, "gnuplot failed (exit status 3: line 7: all points undefined!)"))
      << files.warning;

  // Exit status 0 without the renders is a failure too.
  write_file_atomic(fake, "#!/bin/sh\nexit 0\n");
  ::chmod(fake.c_str(), 0755);
  files = write_figure(sample_figure(), dir(), "sample", {.gnuplot = fake.string()});
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(files.rendered);
  EXPECT_TRUE(contains(files.warning, "gnuplot wrote no sample.render.")) << files.warning;
  EXPECT_TRUE(fs::exists(files.csv));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir()), fs::directory_iterator()), 2);

  // A program that cannot be executed is named with the reason.
  ::chmod(fake.c_str(), 0644);
  ::testing::internal::CaptureStderr();
  files = write_figure(sample_figure(), dir(), "sample", {.gnuplot = fake.string()});
  ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(files.warning, "cannot run gnuplot (")) << files.warning;
  EXPECT_TRUE(contains(files.warning, "Permission denied")) << files.warning;
}

TEST_F(FigureTest, QuotesInStemsAndPanelsWithoutDrawablePointsRender) {
  Figure figure = sample_figure();
  Panel empty{"nothing to draw", "x", "y", false, true};
  empty.series.push_back({"zero", {1, 2}, {0.0, 0.0}});
  figure.panels.push_back(empty);
  figure.columns = 2;
  const FigureFiles files = write_figure(figure, dir(), "it's a figure");
  ASSERT_TRUE(files.rendered) << files.warning;
  EXPECT_TRUE(contains(read_all(files.svg), "no drawable points"));
}

// Expects write_figure to throw a bad-input Error whose message contains `expected`, and to
// write nothing.
void expect_refused(const Figure& figure, const std::string& stem, const std::string& expected,
                    const fs::path& dir) {
  try {
    write_figure(figure, dir, stem, {.render = false});
    ADD_FAILURE() << "no error, expected: " << expected;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_TRUE(contains(e.what(), expected))
        << "message: " << e.what() << "\nexpected: " << expected;
  }
  EXPECT_FALSE(fs::exists(dir)) << expected;
}

TEST_F(FigureTest, BadFiguresAreRefusedByName) {
  expect_refused(Figure{"no panels"}, "f", "figure 'no panels': no panels", dir());
  expect_refused(sample_figure(), "", "figure 'sample figure': empty file stem", dir());
  expect_refused(sample_figure(), "sub/f", "must be a file name without a directory", dir());

  Figure f = sample_figure();
  f.panels.push_back({"empty"});
  expect_refused(f, "f", "figure 'sample figure', panel 'empty': has neither series nor a heat map",
                 dir());

  f = sample_figure();
  f.panels[0].series[0].y.pop_back();
  expect_refused(f, "f", "panel 'loss, per step', series 'model': 30 x values but 29 y values",
                 dir());

  f = sample_figure();
  f.panels[1].heatmap.values.pop_back();
  expect_refused(f, "f", "panel 'weights': heat map has 14 values for 3 x 5 cells", dir());

  f = sample_figure();
  f.panels[1].series.push_back({"s", {1}, {1}});
  expect_refused(f, "f", "panel 'weights': has both a heat map and series", dir());

  f = sample_figure();
  f.panels[0].series[1].name = "model";
  expect_refused(f, "f", "two series are named 'model'", dir());

  f = sample_figure();
  f.panels[1].title = f.panels[0].title;
  expect_refused(f, "f", "two panels have this title", dir());

  f = sample_figure();
  f.panels[0].series[0].name = "the \"best\" model";
  expect_refused(f, "f", "series name 'the \"best\" model' contains a double quote", dir());
}

}  // namespace
}  // namespace mesalab::report
