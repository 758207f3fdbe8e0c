#pragma once
// The reproduction report as markdown and as one self-contained HTML page (figures inline
// as SVG, no network). Both are pure functions of ReportData, so a fixed result set gives a
// fixed report (tested against a golden file).
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "report/experiment.hpp"

namespace mesalab::report {

struct ExperimentReport {
  std::string name, claim, source, criterion;
  Outcome outcome;
  std::vector<std::string> commands;  // training commands, then the analysis equivalents
  std::vector<uint64_t> seeds;        // training seeds of its runs (empty: no training)
  std::vector<uint64_t> sweep_seeds;  // of its sweep presets (empty: it has none)
  double train_s = 0.0, analysis_s = 0.0;
};

struct ReportData {
  std::string title = "mesalab reproduction report";
  std::string date;          // e.g. "2026-12-01 23:40 UTC"
  std::string command_line;  // how the report was made
  bool quick = false;
  std::vector<uint64_t> seeds, sweep_seeds, test_seeds;
  int test_batch = 0;
  double wall_s = 0.0;   // this invocation
  double train_s = 0.0;  // every run's training time, summed (reused runs: their last segment)
  std::vector<ExperimentReport> experiments;
};

// Figure paths are written relative to `dir` (where report.md lives).
std::string report_markdown(const ReportData& data, const std::filesystem::path& dir);

// The figures' SVG files are read and inlined; a missing SVG becomes a visible note.
std::string report_html(const ReportData& data);

// One experiment as JSON (experiments/<name>/result.json).
nlohmann::json outcome_json(const ExperimentReport& report);

}  // namespace mesalab::report
