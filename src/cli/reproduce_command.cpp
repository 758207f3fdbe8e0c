// mesalab reproduce: the paper's claims, each trained, measured and judged, in one report
// (report/reproduce.hpp). --plan and --slurm hand the training runs to a cluster; --collect
// builds the report from finished runs.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/process.hpp"
#include "report/reproduce.hpp"

namespace mesalab::cli {

namespace {

struct ReproduceArgs {
  report::ReproduceOptions options;
  bool plan = false;
  std::string slurm_dir;
  report::SlurmOptions slurm;
  bool list = false;
  bool quiet = false;
};

// The invocation as the report states it.
std::string command_line(const ReproduceArgs& a) {
  const report::ReproduceOptions& o = a.options;
  std::string line = "mesalab reproduce";
  if (o.quick) line += " --quick";
  for (const std::string& n : o.only) line += " --only " + n;
  if (!o.quick) line += fmt::format(" --seeds {} --sweep-seeds {}", o.seeds, o.sweep_seeds);
  line += fmt::format(" --jobs {} --out {}", o.jobs, o.out.string());
  if (o.force) line += " --force";
  if (o.collect) line += " --collect";
  return line;
}

int print_list() {
  for (const report::Experiment& e : report::experiment_registry()) {
    fmt::print("{:<18} {}\n{:<18} runs: {}\n", e.name, e.claim, "",
               e.presets.empty() ? "none" : fmt::format("{}", fmt::join(e.presets, ", ")));
    if (!e.sweep_presets.empty())
      fmt::print("{:<18} sweep runs: {}\n", "", fmt::join(e.sweep_presets, ", "));
  }
  return 0;
}

int run_reproduce(ReproduceArgs a) {
  if (a.list) return print_list();
  a.options.command_line = command_line(a);
  a.options.progress = !a.quiet;
  a.options.render = render_options_from_env();
  if (a.plan || !a.slurm_dir.empty()) {
    const auto experiments = report::select_experiments(a.options.only);
    const auto runs = report::plan_runs(experiments, report::scale_of(a.options), a.options.out,
                                        self_executable(), 0);
    if (a.plan) {
      for (const auto& r : runs) fmt::print("{}\n", r.command());
      return 0;
    }
    const std::filesystem::path dir(a.slurm_dir);
    std::filesystem::create_directories(dir / "logs");
    const std::filesystem::path script = dir / "mesalab_reproduce.sbatch";
    write_file_atomic(script, report::slurm_script(runs, a.slurm, dir / "logs"));
    std::filesystem::permissions(script, std::filesystem::perms::owner_exec,
                                 std::filesystem::perm_options::add);
    fmt::print(
        "wrote {} ({} array tasks)\nsubmit: sbatch {}\nthen:   {} reproduce --collect --out {}{}\n",
        script.string(), runs.size(), script.string(), self_executable().string(),
        a.options.out.string(), a.options.quick ? " --quick" : "");
    return 0;
  }
  const report::ReportData data = report::reproduce(a.options);
  int failed = 0;
  fmt::print("{:<18} {:<8} {}\n", "experiment", "verdict", "measured");
  for (const auto& e : data.experiments) {
    fmt::print("{:<18} {:<8} {}\n", e.name, report::verdict_name(e.outcome.verdict),
               e.outcome.measured);
    failed += e.outcome.verdict == report::Verdict::Failed;
  }
  fmt::print("report: {}/report.md and {}/report.html\n", a.options.out.string(),
             a.options.out.string());
  if (failed > 0) fail_runtime("{} experiment(s) FAILED (see the report)", failed);
  return 0;
}

}  // namespace

Command add_reproduce_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "reproduce", "Train, analyse and judge the paper's claims; writes report.md and report.html");
  auto args = std::make_shared<ReproduceArgs>();
  auto& o = args->options;
  app->add_option("--only", o.only, "experiments to run (default: all; see --list)");
  app->add_flag("--list", args->list, "list the registered experiments");
  app->add_flag("--quick", o.quick, "smoke test: 200-step runs, one seed (seconds, not hours)");
  app->add_option("--seeds", o.seeds, "training seeds at full scale (1..5 of 1, 11, 111, ...)")
      ->capture_default_str();
  app->add_option("--sweep-seeds", o.sweep_seeds,
                  "training seeds of the sweeps' non-headline runs at full scale (1..5)")
      ->capture_default_str();
  app->add_option("--out", o.out, "output directory")->capture_default_str();
  app->add_option("--jobs", o.jobs, "training runs side by side (default: one per core)")
      ->capture_default_str();
  app->add_flag("--force", o.force, "retrain the selected runs from scratch");
  app->add_flag("--collect", o.collect, "train nothing: report on the finished runs");
  app->add_flag("--plan", args->plan, "print one training command per run and exit");
  app->add_option("--slurm", args->slurm_dir,
                  "write a Slurm job-array script (one task per run) into this directory");
  app->add_option("--slurm-cpus", args->slurm.cpus, "Slurm: cpus per task")->capture_default_str();
  app->add_option("--slurm-time", args->slurm.time, "Slurm: time limit per task")
      ->capture_default_str();
  app->add_option("--slurm-mem", args->slurm.mem, "Slurm: memory per task")->capture_default_str();
  app->add_option("--slurm-partition", args->slurm.partition, "Slurm: partition");
  app->add_flag("--quiet", args->quiet, "no status lines");
  return {app, [args] { return run_reproduce(*args); }};
}

}  // namespace mesalab::cli
