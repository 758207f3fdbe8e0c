#pragma once
// An experiment of `mesalab reproduce`: one claim of the paper, the training runs it needs
// (presets x seeds), the analysis that measures it, and a criterion, written before any
// number was seen, that turns the measurement into PASS or DIFFERS. Adding an experiment is
// one entry in the registry (report/experiments.cpp).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "report/figure.hpp"

namespace mesalab::report {

// The paper's evaluation seeds (SPEC_EXPERIMENTS 10): test batches for per-step curves and
// probes, and the training seeds of mesalab's reproduction.
inline const std::vector<uint64_t> kPaperSeeds = {1, 11, 111, 1111, 11111};

// How big a reproduction is.
struct Scale {
  bool quick = false;
  std::vector<uint64_t> seeds;         // training seeds (a prefix of kPaperSeeds)
  std::vector<uint64_t> sweep_seeds;   // training seeds of sweep presets (a prefix too)
  std::vector<std::string> overrides;  // applied to every run's preset (quick: short runs)
  std::vector<uint64_t> test_seeds;    // one test batch per seed
  int test_batch = 256;
};

// The paper's scale with the first `seeds` paper seeds for headline presets and the first
// `sweep_seeds` (at most `seeds`) for sweep presets, and the CI smoke test (one seed, 200
// steps at batch 64, two test seeds of 64 sequences).
Scale full_scale(int seeds, int sweep_seeds = 1);
Scale quick_scale();

// One training run: a preset (configs/<preset>.json, compiled in) trained from one seed.
struct RunSpec {
  std::string preset;
  uint64_t seed = 0;
  std::string name() const;  // "<preset>_s<seed>"
};

enum class Verdict { Pass, Differs, Failed };
std::string_view verdict_name(Verdict verdict);  // "PASS", "DIFFERS", "FAILED"

struct Table {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct FigureRef {
  std::string caption;
  std::filesystem::path svg, png;  // as written by write_figure
};

// What an analysis found. A thrown exception becomes Failed with its message.
struct Outcome {
  Verdict verdict = Verdict::Failed;
  std::string measured;  // the numbers the criterion was applied to, one line
  std::vector<Table> tables;
  std::vector<FigureRef> figures;
  std::vector<std::string> notes;  // what was checked, caveats, what may explain a DIFFERS
};

struct Experiment;

// What an analysis gets: its runs (finished), its own output directory, the scale.
struct Context {
  Scale scale;
  std::filesystem::path out_dir;  // created before analyse() runs
  std::function<std::filesystem::path(const RunSpec&)> run_dir;
  RenderOptions render;
  const Experiment* experiment = nullptr;  // the one being analysed
  // The training seeds of one of the experiment's presets (Experiment::seeds_of).
  std::vector<uint64_t> seeds_of(const std::string& preset) const;
  // write_figure into out_dir, returning the reference for the report.
  FigureRef figure(const Figure& figure, const std::string& stem, const std::string& caption) const;
};

struct Experiment {
  std::string name;                  // --only NAME
  std::string claim;                 // the paper's statement, one sentence
  std::string source;                // where in the paper
  std::string criterion;             // how PASS is decided
  std::vector<std::string> presets;  // headline: each trained from every seed of the scale
  std::function<Outcome(const Context&)> analyse;
  // The rest of a sweep: each trained from scale.sweep_seeds only (default: one seed), so a
  // local reproduction stays affordable (all seeds: --sweep-seeds, e.g. on Slurm).
  std::vector<std::string> sweep_presets = {};

  // Every run the experiment needs at `scale`: presets x seeds, then sweep presets x their
  // seeds.
  std::vector<RunSpec> runs(const Scale& scale) const;
  // The training seeds of `preset` (one of presets or sweep_presets) at `scale`.
  std::vector<uint64_t> seeds_of(const std::string& preset, const Scale& scale) const;
};

const std::vector<Experiment>& experiment_registry();

}  // namespace mesalab::report
