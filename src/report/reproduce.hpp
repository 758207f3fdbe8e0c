#pragma once
// `mesalab reproduce`: train what the selected experiments need (each run one idempotent
// `mesalab train --continue` child process, so a killed reproduce continues where it
// stopped and a failing run cannot take the others down), analyse, and write the report.
//
// Layout of the output directory:
//   configs/<run>.json      resolved config of every run (what the commands train)
//   runs/<run>/             the training runs (config.json, metrics.jsonl, ckpt/)
//   logs/<run>.log          each run's stdout and stderr
//   experiments/<name>/     figures (csv, gp, svg, png) and result.json of each experiment
//   report.md, report.html  the report (report/report_writer.hpp)
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "report/experiment.hpp"
#include "report/report_writer.hpp"

namespace mesalab::report {

// The number of cores (at least 1).
int default_jobs();

struct ReproduceOptions {
  std::vector<std::string> only;  // experiment names; empty = all
  bool quick = false;
  int seeds = 3;        // training seeds at full scale (first of kPaperSeeds); quick uses 1
  int sweep_seeds = 1;  // the same for sweep presets (Experiment::sweep_presets)
  std::filesystem::path out = "reproduce";
  // Training runs side by side, each with cores / jobs threads. Default: one single-threaded
  // run per core, measured fastest on 2 cores (docs/reproduce.md).
  int jobs = default_jobs();
  bool force = false;    // retrain every selected run from scratch
  bool collect = false;  // train nothing: report on the runs that have finished
  bool progress = true;  // status lines on stderr
  RenderOptions render;
  std::filesystem::path executable;  // the mesalab binary the runs use (default: this one)
  std::string command_line;          // as the user typed it, for the report
};

// The selected experiments in registry order; an unknown name is an error listing the
// valid ones.
std::vector<const Experiment*> select_experiments(const std::vector<std::string>& only);

Scale scale_of(const ReproduceOptions& options);

struct PlannedRun {
  RunSpec spec;
  std::filesystem::path config, dir, log;
  int64_t steps = 0;              // train.steps of its config
  std::vector<std::string> argv;  // mesalab train --config <config> --continue --quiet
  std::string command() const;    // argv quoted for a POSIX shell
};

// The runs of the selected experiments, each once, in a stable order. Writes every run's
// resolved config (preset + scale overrides + seed + name + runs_dir) to out/configs/.
// threads > 0 adds --set train.threads=<threads> (results do not depend on it).
std::vector<PlannedRun> plan_runs(const std::vector<const Experiment*>& experiments,
                                  const Scale& scale, const std::filesystem::path& out,
                                  const std::filesystem::path& executable, int threads);

// The run reached its configured steps: metrics.jsonl has that step and the latest
// checkpoint exists.
bool run_finished(const PlannedRun& run);

struct RunStatus {
  bool ok = false;
  bool reused = false;  // finished before this invocation; nothing was trained
  double wall_s = 0.0;  // training time (for reused runs: the last segment, from metrics)
  std::string error;    // why not ok: the run's last error line
};

// Trains every unfinished run, `jobs` at a time. Never throws for a failing run.
std::map<std::string, RunStatus> execute_runs(const std::vector<PlannedRun>& runs, int jobs,
                                              bool force, bool progress);

// --collect: the status of runs without training anything.
std::map<std::string, RunStatus> collect_runs(const std::vector<PlannedRun>& runs);

// The whole pipeline; writes out/report.md and out/report.html and returns what they say.
ReportData reproduce(const ReproduceOptions& options);

// A Slurm job-array script (bash): task i runs the command of runs[i]; logs per task.
struct SlurmOptions {
  int cpus = 2;
  std::string time = "02:00:00";
  std::string mem = "4G";
  std::string partition;  // empty: the cluster's default
};
std::string slurm_script(const std::vector<PlannedRun>& runs, const SlurmOptions& options,
                         const std::filesystem::path& log_dir);

}  // namespace mesalab::report
