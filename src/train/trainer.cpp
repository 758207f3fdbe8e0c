#include "train/trainer.hpp"

#include <fmt/ranges.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "analysis/sensitivity.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "model/batch_runner.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluation.hpp"
#include "train/memory_estimate.hpp"
#include "train/optimizer.hpp"
#include "train/phase_times.hpp"
#include "train/progress.hpp"

namespace mesalab {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path latest_checkpoint_path(const fs::path& run_dir) {
  return run_dir / "ckpt" / "latest.safetensors";
}
fs::path run_config_path(const fs::path& run_dir) { return run_dir / "config.json"; }

fs::path checkpoint_to_read(const fs::path& run_dir, const std::string& chosen) {
  const fs::path ckpt = chosen.empty() ? latest_checkpoint_path(run_dir) : fs::path(chosen);
  if (!fs::exists(ckpt)) fail("no checkpoint at {}", ckpt.string());
  return ckpt;
}

std::vector<std::pair<int64_t, fs::path>> step_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  const fs::path dir = run_dir / "ckpt";
  if (!fs::is_directory(dir)) return found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "step_", suffix = ".safetensors";
    if (!entry.is_regular_file() || !name.starts_with(prefix) || !name.ends_with(suffix)) continue;
    const std::string digits =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.empty() || digits.size() > 18 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    found.emplace_back(std::stoll(digits), entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

RunConfig load_run_config(const fs::path& run_dir, const std::vector<std::string>& overrides) {
  const fs::path path = run_config_path(run_dir);
  if (!fs::exists(path)) fail("'{}' is not a run directory (no config.json)", run_dir.string());
  json file = json::parse(read_file(path), nullptr, false);
  if (file.is_discarded()) fail("{}: not valid JSON", path.string());
  return make_run_config(file, overrides);
}

// Keeps the lines of steps before `step` of a metrics.jsonl or sensitivity.jsonl (they are
// what the checkpoint has seen).
static void truncate_metrics(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string kept, line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) continue;
    if (j["step"].get<int64_t>() < step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

// What mesalab writes into a run directory besides config.json, metrics.jsonl and ckpt/:
// the outputs of the commands that read a run. --force removes them with the run they
// described; anything else in the directory is the user's and stays.
const std::vector<std::string> kDerivedOutputs = {
    "eval.csv",        "eval.json",          "probes.csv",         "probes.json",
    "revalg.json",     "interpolation.json", "config_changes.log", "figures",
    "icl.json",        "prompt.safetensors", "prompt_tune.json",   "tokens.json",
    "sensitivity.json"};

// A temporary file of write_file_atomic: "<name>.tmp.<pid>" for one of mesalab's own files.
static bool is_own_temp_file(const std::string& filename) {
  const size_t at = filename.rfind(".tmp.");
  if (at == std::string::npos || at + 5 == filename.size()) return false;
  for (size_t i = at + 5; i < filename.size(); ++i)
    if (filename[i] < '0' || filename[i] > '9') return false;
  const std::string target = filename.substr(0, at);
  const bool checkpoint = target.size() > 12 && target.ends_with(".safetensors");
  return checkpoint || target == "config.json" || target == "metrics.jsonl" ||
         std::find(kDerivedOutputs.begin(), kDerivedOutputs.end(), target) != kDerivedOutputs.end();
}

// A write killed between temp file and rename leaves "<name>.tmp.<pid>" behind; nothing
// reads those, so they are removed when a run (re)starts.
static void remove_stale_temp_files(const fs::path& run_dir) {
  for (const fs::path& dir : {run_dir, run_dir / "ckpt"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file() && is_own_temp_file(entry.path().filename().string()))
        fs::remove(entry.path());
  }
}

// Names the first non-finite gradient tensor, or returns "" if all are finite.
static std::string first_bad_tensor(const Transformer& model, const float* grads) {
  for (const auto& spec : model.layout().specs())
    if (first_non_finite(grads + spec.offset, spec.size) != spec.size) return spec.name;
  return "";
}

std::vector<std::string> run_config_differences(const json& stored, const json& requested) {
  // Keys that do not change a single bit of the run (or only extend it).
  static const std::vector<std::string> may_change = {
      "train.steps", "train.threads", "train.runs_dir", "train.mesa_recompute_inverses",
      "train.sensitivity_every"};
  const json a = flatten_config(stored), b = flatten_config(requested);
  std::vector<std::string> differences;
  auto differs = [&](const std::string& key) {
    if (std::find(may_change.begin(), may_change.end(), key) != may_change.end()) return;
    const json va = a.contains(key) ? a[key] : json(), vb = b.contains(key) ? b[key] : json();
    if (va != vb) differences.push_back(fmt::format("{}: {} -> {}", key, va.dump(), vb.dump()));
  };
  for (const auto& [key, _] : a.items()) differs(key);
  for (const auto& [key, _] : b.items())
    if (!a.contains(key)) differs(key);
  return differences;
}

std::vector<std::string> checkpoint_config_differences(const fs::path& ckpt, const RunConfig& cfg) {
  const RunConfig stored = make_run_config(checkpoint_config(ckpt), {});
  return run_config_differences(stored.resolved, cfg.resolved);
}

TrainState load_run_checkpoint(const fs::path& ckpt, const RunConfig& cfg,
                               const Transformer& model) {
  const std::vector<std::string> differences = checkpoint_config_differences(ckpt, cfg);
  if (!differences.empty())
    fail(
        "{} was written under another config than the run's ({}); restore config.json, or "
        "resume with --allow-config-change",
        ckpt.string(), fmt::join(differences, "; "));
  return load_checkpoint(ckpt, model);
}

// A resume under a changed config or generator: on stderr and in RUN/config_changes.log.
static void log_resume_change(const fs::path& run_dir, const std::string& line) {
  fmt::print(stderr, "note: {}\n", line);
  std::ofstream(run_dir / "config_changes.log", std::ios::app) << line << "\n";
}

// With continue_existing: resume a checkpointed run of the same config, else start afresh.
static TrainOptions resolve_continue(const RunConfig& cfg, const fs::path& run_dir,
                                     TrainOptions options) {
  if (!options.continue_existing) return options;
  if (!fs::exists(latest_checkpoint_path(run_dir))) {
    options.force = true;  // nothing to keep: a run killed before its first checkpoint
    return options;
  }
  const RunConfig stored = load_run_config(run_dir, {});
  const std::vector<std::string> differences =
      run_config_differences(stored.resolved, cfg.resolved);
  if (!differences.empty())
    fail("run directory '{}' holds a run with another config ({}); use --force to start it afresh",
         run_dir.string(), fmt::join(differences, "; "));
  options.resume = true;
  return options;
}

TrainResult train(const RunConfig& cfg, const fs::path& run_dir, const TrainOptions& requested) {
  const TrainOptions options = resolve_continue(cfg, run_dir, requested);
  if (cfg.train.threads > 0) omp_set_num_threads(cfg.train.threads);
  check_training_memory(cfg, omp_get_max_threads(), available_memory_bytes());
  ModelConfig model_config = cfg.model;
  model_config.detect_anomaly = options.detect_anomaly;
  model_config.mesa_recompute_inverses = cfg.train.mesa_recompute_inverses;
  const Transformer model(model_config);
  const fs::path ckpt_dir = run_dir / "ckpt", metrics_path = run_dir / "metrics.jsonl";
  const fs::path sensitivity_path = run_dir / "sensitivity.jsonl";

  TrainState state;
  if (options.resume) {
    remove_stale_temp_files(run_dir);
    if (!fs::exists(latest_checkpoint_path(run_dir)))
      fail("cannot resume '{}': no checkpoint at {}", run_dir.string(),
           latest_checkpoint_path(run_dir).string());
    const fs::path latest = latest_checkpoint_path(run_dir);
    if (options.allow_config_change) {
      state = load_checkpoint(latest, model);
      const std::vector<std::string> changes = checkpoint_config_differences(latest, cfg);
      if (!changes.empty()) {
        const std::string line = fmt::format("step {}: resumed under a changed config: {}",
                                             state.step, fmt::join(changes, "; "));
        log_resume_change(run_dir, line);
      }
    } else {
      state = load_run_checkpoint(latest, cfg, model);
    }
    if (state.data_generator != kDataGeneratorVersion) {
      const std::string change = fmt::format(
          "data generator version {} -> {} (the batches after step {} are drawn "
          "with other bits than those before)",
          state.data_generator, kDataGeneratorVersion, state.step);
      if (!options.allow_config_change)
        fail(
            "{} was written by a build whose data generator differs: {}; start the run afresh "
            "(--force), or resume with --allow-config-change",
            latest.string(), change);
      log_resume_change(run_dir, fmt::format("step {}: resumed with {}", state.step, change));
      state.data_generator = kDataGeneratorVersion;
    }
    truncate_metrics(metrics_path, state.step);
    truncate_metrics(sensitivity_path, state.step);
  } else {
    if (fs::exists(run_dir) && !options.force)
      fail(
          "run directory '{}' already exists (use --resume to continue it or --force to start "
          "it afresh)",
          run_dir.string());
    if (fs::exists(run_dir)) {
      remove_stale_temp_files(run_dir);
      fs::remove_all(ckpt_dir);
      fs::remove(metrics_path);
      fs::remove(sensitivity_path);
      for (const std::string& name : kDerivedOutputs) fs::remove_all(run_dir / name);
    }
    fs::create_directories(ckpt_dir);
    state.params.resize(model.num_params());
    model.init_params(state.params.data(), cfg.train.seed);
    state.adam_m.assign(model.num_params(), 0.0f);
    state.adam_v.assign(model.num_params(), 0.0f);
  }
  write_file_atomic(run_config_path(run_dir), cfg.resolved.dump(2) + "\n");

  const DataConfig& data = cfg.data;
  BatchRunner<float> train_runner(model, cfg.train.batch_size, data.seq_len);
  BatchRunner<float> test_runner(model, cfg.train.test_batch_size, data.seq_len,
                                 /*forward_only=*/true);
  const std::vector<TokenBatch> test_set =
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size);
  std::vector<float> grads(model.num_params());

  std::ofstream metrics(metrics_path, std::ios::app);
  if (!metrics) fail("cannot write {}", metrics_path.string());
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed_s = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  PhaseTimes times;
  ProgressLine progress(cfg.name, state.step, cfg.train.steps, options.progress);
  double last_train_loss = NAN, last_test_loss = NAN;
  auto evaluate_and_log = [&](int64_t step) {
    const auto [forward_s, backward_s] = train_runner.thread_seconds();
    times.set_model_split(forward_s, backward_s);
    const std::vector<double> curve = per_step_loss(test_runner, state.params.data(), test_set);
    last_test_loss = curve_mean(curve);
    json line = {{"step", step},
                 {"test_loss", last_test_loss},
                 {"lr", learning_rate(cfg.optim, step)},
                 {"elapsed_s", elapsed_s()},
                 {"phase_s", times.to_json()}};
    line["train_loss"] = state.train_loss_count > 0
                             ? json(state.train_loss_sum / double(state.train_loss_count))
                             : json(nullptr);
    metrics << line.dump() << "\n" << std::flush;
    state.train_loss_sum = 0.0;
    state.train_loss_count = 0;
    progress.report(step, last_train_loss, last_test_loss);
    if (options.on_evaluation) options.on_evaluation(step, state.params, last_test_loss);
    return curve;
  };

  // train.sensitivity_every: the first block's sensitivity table on fixed test sequences,
  // measured like the test loss before the step's update, one line per record. It reads the
  // parameters and nothing else of the run's state, so training is unchanged bit for bit.
  const int64_t sensitivity_every = cfg.train.sensitivity_every;
  std::unique_ptr<FirstBlockSensitivity<float>> sensitivity;
  TokenBatch sensitivity_data;
  std::ofstream sensitivity_out;
  if (sensitivity_every > 0) {
    sensitivity_data = sensitivity_batch(cfg, kSensitivityBatch);
    sensitivity =
        std::make_unique<FirstBlockSensitivity<float>>(model, kSensitivityBatch, data.seq_len);
    sensitivity_out.open(sensitivity_path, std::ios::app);
    if (!sensitivity_out) fail("cannot write {}", sensitivity_path.string());
  }
  auto record_sensitivity = [&](int64_t step) {
    const auto started = std::chrono::steady_clock::now();
    const SensitivityTable table =
        sensitivity->compute(state.params.data(), sensitivity_data.tokens.data());
    json line = sensitivity_record_json({step, table});
    line["elapsed_ms"] =
        1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    sensitivity_out << line.dump() << "\n" << std::flush;
  };

  const TokenSource source = token_source(cfg);
  TokenBatch batch;
  for (int64_t step = state.step; step < cfg.train.steps; ++step) {
    if (step % cfg.train.eval_every == 0)
      times.time(Phase::Evaluation, [&] { return evaluate_and_log(step); });
    if (sensitivity_every > 0 && step % sensitivity_every == 0)
      times.time(Phase::Evaluation, [&] { record_sensitivity(step); });
    times.time(Phase::Data, [&] {
      fill_token_batch(source, cfg.train.seed, RngPurpose::TrainData, uint64_t(step),
                       cfg.train.batch_size, batch, /*keep_states=*/false);
    });
    double loss = 0.0;
    try {
      loss = times.time(Phase::Model, [&] {
        return train_runner.loss_and_grad(state.params.data(), batch.tokens.data(),
                                          batch.labels.data(), grads.data());
      });
    } catch (const Error& e) {
      fail_runtime("step {}: {}; training stopped, the last good checkpoint is {} (step {})", step,
                   e.what(), latest_checkpoint_path(run_dir).string(), state.step);
    }
    if (step == cfg.train.inject_nan_at_step) grads[0] = NAN;
    const std::string bad = std::isfinite(loss) ? first_bad_tensor(model, grads.data()) : "loss";
    if (!bad.empty())
      fail_runtime(
          "step {}: non-finite value in {}; training stopped, the last good checkpoint "
          "is {} (step {})",
          step, bad == "loss" ? "the loss" : "the gradient of tensor '" + bad + "'",
          latest_checkpoint_path(run_dir).string(), state.step);
    times.time(Phase::Optimizer, [&] {
      adamw_step(cfg.optim, step, state.params.data(), grads.data(), state.adam_m.data(),
                 state.adam_v.data(), grads.size());
    });
    state.train_loss_sum += loss;
    state.train_loss_count += 1;
    state.step = step + 1;
    last_train_loss = loss;
    progress.tick(state.step, loss, last_test_loss);
    const bool stop = options.stop_requested && options.stop_requested();
    if (state.step % cfg.train.checkpoint_every == 0 || state.step == cfg.train.steps) {
      times.time(Phase::Checkpoint, [&] {
        save_checkpoint(ckpt_dir / fmt::format("step_{}.safetensors", state.step), model,
                        cfg.resolved, state);
        save_checkpoint(latest_checkpoint_path(run_dir), model, cfg.resolved, state);
      });
    } else if (stop) {
      times.time(Phase::Checkpoint, [&] {
        save_checkpoint(latest_checkpoint_path(run_dir), model, cfg.resolved, state);
      });
    }
    if (stop) break;
  }
  TrainResult result;
  result.run_dir = run_dir;
  result.steps = state.step;
  if (state.step < cfg.train.steps) {
    result.stopped = true;
    result.test_loss = last_test_loss;
    progress.finish();
    return result;
  }
  result.test_curve = times.time(Phase::Evaluation, [&] { return evaluate_and_log(state.step); });
  if (sensitivity_every > 0) times.time(Phase::Evaluation, [&] { record_sensitivity(state.step); });
  result.test_loss = last_test_loss;
  progress.finish();
  // The final evaluation above has already set the model's forward/backward split.
  if (options.progress) fmt::print(stderr, "{}: {}\n", cfg.name, times.summary(elapsed_s()));
  return result;
}

}  // namespace mesalab
