// The report is a pure function of its results: a fixed result set gives the golden markdown
// (tests/fixtures/report_golden.md; MESALAB_UPDATE_GOLDEN=1 rewrites it after a deliberate
// change), and the HTML page inlines every figure it names as SVG, with no external resource.
#include "report/report_writer.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/cli_util.hpp"

namespace mesalab::report {
namespace {

namespace fs = std::filesystem;
using mesalab::testing::contains;
using mesalab::testing::read_all;

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

class ReportWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = mesalab::testing::make_temp_dir("mesalab_report_");
    ASSERT_FALSE(dir_.empty());
    fs::create_directories(dir_ / "experiments" / "demo");
    for (const char* stem : {"curves", "weights"}) {
      std::ofstream(dir_ / "experiments" / "demo" / (std::string(stem) + ".svg"))
          << "<?xml version=\"1.0\"?>\n<svg viewBox=\"0 0 10 10\" width=\"10\" height=\"10\">"
             "<defs><path id=\"gpPt0\" d=\"M0 0\"/></defs><use href=\"#gpPt0\"/>"
             "<g clip-path=\"url(#gpClip)\"/></svg>\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  ReportData fixed_data() const {
    ReportData d;
    d.date = "2026-12-01 12:00 UTC";
    d.command_line = "mesalab reproduce --quick --jobs 1 --out out";
    d.quick = true;
    d.seeds = {1, 11};
    d.sweep_seeds = {1};
    d.test_seeds = {1, 11};
    d.test_batch = 64;
    d.wall_s = 75.4;
    d.train_s = 4000.0;
    ExperimentReport pass{"demo",
                          "A claim | with a pipe.",
                          "Paper Fig. 2",
                          "loss < 1",
                          {},
                          {"mesalab train --config c.json --continue"},
                          {1, 11},
                          {1},
                          12.25,
                          0.5};
    pass.outcome.verdict = Verdict::Pass;
    pass.outcome.measured = "loss 0.5 (criterion < 1)";
    pass.outcome.tables.push_back({"caption <b>", {"a", "b"}, {{"1", "x|y"}, {"2", "z"}}});
    for (const char* stem : {"curves", "weights"})
      pass.outcome.figures.push_back(
          {std::string("the ") + stem, dir_ / "experiments" / "demo" / (std::string(stem) + ".svg"),
           dir_ / "experiments" / "demo" / (std::string(stem) + ".png")});
    pass.outcome.notes.push_back("checked by hand");
    ExperimentReport failed{"broken", "Another claim.", "Sec. 5", "r2 > 0.9", {}, {}, {}, {}, 0,
                            0.1};
    failed.outcome.measured = "runs failed: x_s1: error: boom";
    d.experiments = {pass, failed};
    return d;
  }

  fs::path dir_;
};

TEST_F(ReportWriterTest, MarkdownMatchesGolden) {
  const std::string md = report_markdown(fixed_data(), dir_);
  const fs::path golden = fs::path(MESALAB_FIXTURES_DIR) / "report_golden.md";
  if (const char* update = std::getenv("MESALAB_UPDATE_GOLDEN");
      update && std::string(update) == "1")
    std::ofstream(golden) << md;
  EXPECT_EQ(md, read_all(golden)) << "(MESALAB_UPDATE_GOLDEN=1 rewrites the golden file)";
  EXPECT_TRUE(contains(md, "](experiments/demo/curves.svg)")) << "figure paths are relative";
}

TEST_F(ReportWriterTest, HtmlInlinesEveryFigureAndNeedsNoNetwork) {
  const std::string html = report_html(fixed_data());
  EXPECT_EQ(count(html, "<svg"), 2);
  EXPECT_EQ(count(html, "</svg>"), 2);
  EXPECT_EQ(count(html, "<figure>"), 2);
  EXPECT_FALSE(contains(html, "<?xml")) << "the XML prolog is dropped when inlining";
  EXPECT_FALSE(contains(html, "http://") || contains(html, "https://") || contains(html, "src="));
  // ids of different figures do not collide, and references follow them
  EXPECT_TRUE(contains(html, "id=\"f0_gpPt0\"") && contains(html, "id=\"f1_gpPt0\""));
  EXPECT_TRUE(contains(html, "href=\"#f1_gpPt0\"") && contains(html, "url(#f1_gpClip)"));
  EXPECT_TRUE(contains(html, "caption &lt;b&gt;")) << "text is escaped";
  EXPECT_TRUE(contains(html, "class=\"verdict pass\">PASS") &&
              contains(html, "class=\"verdict failed\">FAILED"));
  for (const char* tag : {"section", "table", "figure", "ul", "pre", "p"})
    EXPECT_EQ(count(html, std::string("<") + tag + ">") + count(html, std::string("<") + tag + " "),
              count(html, std::string("</") + tag + ">"))
        << tag;
}

TEST_F(ReportWriterTest, MissingSvgIsAVisibleNoteNotACrash) {
  ReportData d = fixed_data();
  fs::remove(dir_ / "experiments" / "demo" / "weights.svg");
  const std::string html = report_html(d);
  EXPECT_EQ(count(html, "<svg"), 1);
  EXPECT_TRUE(contains(html, "figure not rendered: weights.svg is missing"));
}

TEST_F(ReportWriterTest, OutcomeJsonCarriesVerdictAndTables) {
  const auto j = outcome_json(fixed_data().experiments[0]);
  EXPECT_EQ(j["verdict"], "PASS");
  EXPECT_EQ(j["tables"][0]["rows"][0][1], "x|y");
  EXPECT_EQ(j["figures"].size(), 2u);
  EXPECT_EQ(outcome_json(fixed_data().experiments[1])["verdict"], "FAILED");
}

}  // namespace
}  // namespace mesalab::report
