#include "report/reproduce.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/process.hpp"
#include "train/presets.hpp"
#include "train/trainer.hpp"

namespace mesalab::report {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The last line of metrics.jsonl as JSON (null if there is none).
nlohmann::json last_metrics(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  const nlohmann::json j = nlohmann::json::parse(last, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

// The last line of a run's log that says what went wrong.
std::string error_line(const fs::path& log, int status) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find("error") != std::string::npos) last = line;
  if (last.empty()) last = fmt::format("exit status {}", status);
  return last;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-./=:,+") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:%Y-%m-%d %H:%M} UTC", tm);
}

// Status lines while runs train: each running run's step, rate and ETA (rates from the
// steps its metrics.jsonl advanced since the previous status line).
class RunMonitor {
 public:
  RunMonitor(size_t total, bool enabled) : total_(total), enabled_(enabled) {}
  void event(const std::string& what) {
    if (enabled_) fmt::print(stderr, "reproduce: {}\n", what);
  }
  void status(size_t done, const std::vector<const PlannedRun*>& running) {
    const double dt = seconds_since(last_);
    if (!enabled_ || dt < 30.0) return;
    last_ = Clock::now();
    std::vector<std::string> parts;
    for (const PlannedRun* r : running) {
      const nlohmann::json m = last_metrics(r->dir);
      if (m.is_null()) {
        parts.push_back(r->spec.name() + " starting");
        continue;
      }
      const int64_t step = m["step"].get<int64_t>(), steps = r->steps;
      auto [it, fresh] = seen_.try_emplace(r->spec.name(), step);
      const double rate = fresh ? 0.0 : double(step - it->second) / dt;
      it->second = step;
      parts.push_back(rate > 0.0 ? fmt::format("{} step {}/{} ({:.1f} steps/s, ETA {:.0f} min)",
                                               r->spec.name(), step, steps, rate,
                                               double(steps - step) / rate / 60.0)
                                 : fmt::format("{} step {}/{}", r->spec.name(), step, steps));
    }
    fmt::print(stderr, "reproduce: {}/{} runs done; {}\n", done, total_, fmt::join(parts, ", "));
  }

 private:
  size_t total_;
  bool enabled_;
  Clock::time_point last_ = Clock::now();
  std::map<std::string, int64_t> seen_;  // run -> step at the previous status line
};

std::vector<std::string> analysis_commands(const Experiment& e) {
  return {fmt::format("# analysis (in-process): mesalab reproduce --collect --only {}", e.name)};
}

}  // namespace

int default_jobs() { return int(std::max(1u, std::thread::hardware_concurrency())); }

Scale full_scale(int seeds, int sweep_seeds) {
  if (seeds < 1 || seeds > int(kPaperSeeds.size()))
    fail("--seeds must be 1..{}, got {}", kPaperSeeds.size(), seeds);
  if (sweep_seeds < 1 || sweep_seeds > int(kPaperSeeds.size()))
    fail("--sweep-seeds must be 1..{}, got {}", kPaperSeeds.size(), sweep_seeds);
  Scale s;
  s.seeds.assign(kPaperSeeds.begin(), kPaperSeeds.begin() + seeds);
  s.sweep_seeds.assign(kPaperSeeds.begin(), kPaperSeeds.begin() + sweep_seeds);
  s.test_seeds = kPaperSeeds;
  return s;
}

Scale quick_scale() {
  Scale s;
  s.quick = true;
  s.seeds = s.sweep_seeds = {kPaperSeeds[0]};
  s.test_seeds = {kPaperSeeds[0], kPaperSeeds[1]};
  s.test_batch = 64;
  s.overrides = {"train.steps=200",       "train.batch_size=64",
                 "train.eval_every=50",   "train.checkpoint_every=100",
                 "train.test_batches=2",  "train.test_batch_size=64",
                 "optim.warmup_steps=20", "optim.decay_steps=200"};
  return s;
}

std::string RunSpec::name() const { return fmt::format("{}_s{}", preset, seed); }

std::vector<uint64_t> Experiment::seeds_of(const std::string& preset, const Scale& scale) const {
  if (std::find(presets.begin(), presets.end(), preset) != presets.end()) return scale.seeds;
  if (std::find(sweep_presets.begin(), sweep_presets.end(), preset) != sweep_presets.end())
    return scale.sweep_seeds;
  fail("experiment {} does not train preset {}", name, preset);
}

std::vector<uint64_t> Context::seeds_of(const std::string& preset) const {
  if (experiment == nullptr) fail("analysis context without its experiment");
  return experiment->seeds_of(preset, scale);
}

std::vector<RunSpec> Experiment::runs(const Scale& scale) const {
  std::vector<RunSpec> specs;
  for (const std::string& preset : presets)
    for (uint64_t seed : scale.seeds) specs.push_back({preset, seed});
  for (const std::string& preset : sweep_presets)
    for (uint64_t seed : scale.sweep_seeds) specs.push_back({preset, seed});
  return specs;
}

std::string_view verdict_name(Verdict v) {
  return v == Verdict::Pass ? "PASS" : v == Verdict::Differs ? "DIFFERS" : "FAILED";
}

FigureRef Context::figure(const Figure& fig, const std::string& stem,
                          const std::string& caption) const {
  const FigureFiles files = write_figure(fig, out_dir, stem, render);
  return {caption, files.svg, files.png};
}

std::vector<const Experiment*> select_experiments(const std::vector<std::string>& only) {
  const std::vector<Experiment>& all = experiment_registry();
  std::vector<std::string> names;
  for (const Experiment& e : all) names.push_back(e.name);
  for (const std::string& n : only)
    if (std::find(names.begin(), names.end(), n) == names.end())
      fail("unknown experiment '{}' (valid: {})", n, fmt::join(names, ", "));
  std::vector<const Experiment*> selected;
  for (const Experiment& e : all)
    if (only.empty() || std::find(only.begin(), only.end(), e.name) != only.end())
      selected.push_back(&e);
  return selected;
}

Scale scale_of(const ReproduceOptions& o) {
  return o.quick ? quick_scale() : full_scale(o.seeds, o.sweep_seeds);
}

std::string PlannedRun::command() const {
  std::vector<std::string> quoted;
  for (const std::string& a : argv) quoted.push_back(shell_quote(a));
  return fmt::format("{}", fmt::join(quoted, " "));
}

std::vector<PlannedRun> plan_runs(const std::vector<const Experiment*>& experiments,
                                  const Scale& scale, const fs::path& out,
                                  const fs::path& executable, int threads) {
  const fs::path root = fs::absolute(out);
  std::vector<PlannedRun> runs;
  std::set<std::string> seen;
  for (const Experiment* e : experiments)
    for (const RunSpec& spec : e->runs(scale)) {
      const std::string& preset = spec.preset;
      const uint64_t seed = spec.seed;
      if (!seen.insert(spec.name()).second) continue;
      std::vector<std::string> overrides = scale.overrides;
      overrides.push_back(fmt::format("train.seed={}", seed));
      overrides.push_back("name=" + spec.name());
      overrides.push_back("train.runs_dir=" + (root / "runs").string());
      const RunConfig cfg = preset_run_config(preset, overrides);
      PlannedRun run;
      run.spec = spec;
      run.steps = cfg.train.steps;
      run.config = root / "configs" / (spec.name() + ".json");
      run.dir = root / "runs" / spec.name();
      run.log = root / "logs" / (spec.name() + ".log");
      fs::create_directories(run.config.parent_path());
      write_file_atomic(run.config, cfg.resolved.dump(2) + "\n");
      run.argv = {executable.string(), "train",      "--config",
                  run.config.string(), "--continue", "--quiet"};
      if (threads > 0) {
        run.argv.push_back("--set");
        run.argv.push_back(fmt::format("train.threads={}", threads));
      }
      runs.push_back(std::move(run));
    }
  return runs;
}

bool run_finished(const PlannedRun& run) {
  if (!fs::exists(latest_checkpoint_path(run.dir))) return false;
  std::ifstream in(run.dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("step") && j["step"] == run.steps) return true;
  }
  return false;
}

std::map<std::string, RunStatus> collect_runs(const std::vector<PlannedRun>& runs) {
  std::map<std::string, RunStatus> status;
  for (const PlannedRun& r : runs) {
    RunStatus& s = status[r.spec.name()];
    if (run_finished(r)) {
      s.ok = s.reused = true;
      const nlohmann::json m = last_metrics(r.dir);
      s.wall_s = m.contains("elapsed_s") ? m["elapsed_s"].get<double>() : 0.0;
    } else {
      const nlohmann::json m = last_metrics(r.dir);
      s.error = m.is_null() ? fmt::format("run {} has not been trained", r.spec.name())
                            : fmt::format("run {} has not finished (step {} of {})", r.spec.name(),
                                          m["step"].get<int64_t>(), r.steps);
    }
  }
  return status;
}

std::map<std::string, RunStatus> execute_runs(const std::vector<PlannedRun>& runs, int jobs,
                                              bool force, bool progress) {
  if (jobs < 1) fail("--jobs must be >= 1, got {}", jobs);
  std::map<std::string, RunStatus> status;
  std::vector<const PlannedRun*> pending;
  for (const PlannedRun& r : runs) {
    if (force) {
      fs::remove_all(r.dir);
      fs::remove(r.log);
    }
    if (!force && run_finished(r)) {
      status[r.spec.name()] = collect_runs({r}).at(r.spec.name());
      continue;
    }
    pending.push_back(&r);
  }
  RunMonitor monitor(runs.size(), progress);
  if (!pending.empty())
    monitor.event(fmt::format("{} of {} runs to train, {} at a time (logs in {})", pending.size(),
                              runs.size(), jobs, pending.front()->log.parent_path().string()));
  struct Active {
    const PlannedRun* run;
    ChildProcess child;
    Clock::time_point start;
  };
  std::vector<Active> active;
  size_t next = 0, done = runs.size() - pending.size();
  while (next < pending.size() || !active.empty()) {
    while (next < pending.size() && int(active.size()) < jobs) {
      const PlannedRun* r = pending[next++];
      fs::create_directories(r->log.parent_path());
      try {
        active.push_back({r, ChildProcess::start({r->argv, {}, r->log}), Clock::now()});
        monitor.event("started " + r->spec.name());
      } catch (const Error& e) {
        status[r->spec.name()].error = e.what();
        ++done;
      }
    }
    for (size_t i = 0; i < active.size();) {
      const std::optional<int> exit = active[i].child.poll();
      if (!exit) {
        ++i;
        continue;
      }
      const PlannedRun* r = active[i].run;
      RunStatus& s = status[r->spec.name()];
      s.wall_s = seconds_since(active[i].start);
      s.ok = *exit == 0 && run_finished(*r);
      if (!s.ok) s.error = error_line(r->log, *exit);
      ++done;
      monitor.event(s.ok ? fmt::format("finished {} in {:.0f} s", r->spec.name(), s.wall_s)
                         : fmt::format("FAILED {}: {}", r->spec.name(), s.error));
      active.erase(active.begin() + long(i));
    }
    std::vector<const PlannedRun*> running;
    for (const Active& a : active) running.push_back(a.run);
    monitor.status(done, running);
    if (!active.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return status;
}

ReportData reproduce(const ReproduceOptions& o) {
  const auto t0 = Clock::now();
  const std::vector<const Experiment*> experiments = select_experiments(o.only);
  const Scale scale = scale_of(o);
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec || access(o.out.c_str(), W_OK) != 0)
    fail("cannot write to --out {}: {}", o.out.string(),
         ec ? ec.message() : std::string("permission denied"));
  const int threads = std::max(1, default_jobs() / std::max(1, o.jobs));
  const fs::path exe = o.executable.empty() ? self_executable() : o.executable;
  const std::vector<PlannedRun> runs = plan_runs(experiments, scale, o.out, exe, threads);
  const std::map<std::string, RunStatus> status =
      o.collect ? collect_runs(runs) : execute_runs(runs, o.jobs, o.force, o.progress);

  ReportData data;
  data.date = now_utc();
  data.command_line = o.command_line;
  data.quick = scale.quick;
  data.seeds = scale.seeds;
  data.sweep_seeds = scale.sweep_seeds;
  data.test_seeds = scale.test_seeds;
  data.test_batch = scale.test_batch;
  for (const Experiment* e : experiments) {
    ExperimentReport rep{e->name, e->claim, e->source, e->criterion, {}, {}, {}, {}, 0.0, 0.0};
    std::vector<std::string> failures;
    for (const RunSpec& spec : e->runs(scale)) {
      const auto run = std::find_if(runs.begin(), runs.end(), [&](const PlannedRun& r) {
        return r.spec.name() == spec.name();
      });
      rep.commands.push_back(run->command());
      const RunStatus& s = status.at(spec.name());
      rep.train_s += s.wall_s;
      if (!s.ok) failures.push_back(fmt::format("{}: {}", spec.name(), s.error));
    }
    if (!e->presets.empty()) rep.seeds = scale.seeds;
    if (!e->sweep_presets.empty()) rep.sweep_seeds = scale.sweep_seeds;
    for (const std::string& c : analysis_commands(*e)) rep.commands.push_back(c);
    const auto a0 = Clock::now();
    Context ctx{scale, fs::absolute(o.out) / "experiments" / e->name,
                [&](const RunSpec& spec) { return fs::absolute(o.out) / "runs" / spec.name(); },
                o.render, e};
    if (!failures.empty()) {
      rep.outcome.measured = "runs failed: " + fmt::format("{}", fmt::join(failures, "; "));
    } else {
      try {
        fs::create_directories(ctx.out_dir);
        rep.outcome = e->analyse(ctx);
      } catch (const std::exception& ex) {
        rep.outcome = Outcome{};
        rep.outcome.measured = fmt::format("analysis failed: {}", ex.what());
      }
    }
    rep.analysis_s = seconds_since(a0);
    if (o.progress)
      fmt::print(stderr, "reproduce: {} {}: {}\n", e->name, verdict_name(rep.outcome.verdict),
                 rep.outcome.measured);
    fs::create_directories(ctx.out_dir);
    write_file_atomic(ctx.out_dir / "result.json", outcome_json(rep).dump(2) + "\n");
    data.experiments.push_back(std::move(rep));
  }
  for (const auto& [_, s] : status) data.train_s += s.wall_s;
  data.wall_s = seconds_since(t0);
  write_file_atomic(o.out / "report.md", report_markdown(data, fs::absolute(o.out)));
  write_file_atomic(o.out / "report.html", report_html(data));
  return data;
}

std::string slurm_script(const std::vector<PlannedRun>& runs, const SlurmOptions& o,
                         const fs::path& log_dir) {
  if (runs.empty()) fail("nothing to run: the selection needs no training");
  std::string s = "#!/bin/bash\n";
  s += "# mesalab reproduce: one array task per training run (generated; see --plan).\n";
  s += "# Submit with: sbatch <this file>; then build the report with --collect.\n";
  s += fmt::format("#SBATCH --job-name=mesalab-reproduce\n#SBATCH --array=0-{}\n", runs.size() - 1);
  s += fmt::format("#SBATCH --cpus-per-task={}\n#SBATCH --time={}\n#SBATCH --mem={}\n", o.cpus,
                   o.time, o.mem);
  if (!o.partition.empty()) s += fmt::format("#SBATCH --partition={}\n", o.partition);
  s += fmt::format("#SBATCH --output={}/%A_%a.log\n", fs::absolute(log_dir).string());
  s += "set -euo pipefail\ncommands=(\n";
  for (const PlannedRun& r : runs) s += "  " + shell_quote(r.command()) + "\n";
  s += ")\n";
  s += ": \"${SLURM_ARRAY_TASK_ID:?run this script with sbatch, or set SLURM_ARRAY_TASK_ID}\"\n";
  s += "export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-" + std::to_string(o.cpus) + "}\"\n";
  s += "eval \"${commands[$SLURM_ARRAY_TASK_ID]}\"\n";
  return s;
}

}  // namespace mesalab::report
