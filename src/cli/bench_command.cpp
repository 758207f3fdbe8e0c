#include <fmt/format.h>
#include <omp.h>

#include <fstream>

#include "analysis/analysis_benchmark.hpp"
#include "cli/commands.hpp"
#include "train/run_config.hpp"
#include "train/step_benchmark.hpp"

namespace mesalab::cli {

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

struct BenchArgs {
  bool json = false;
  double seconds = 2.0;
  bool include_mesa = true;
  bool analyses = false;
  bool scaling = false;
};

int run_analysis_bench(const BenchArgs& a) {
  const std::vector<AnalysisTiming> timings = time_analyses();
  nlohmann::json records = nlohmann::json::array();
  if (!a.json)
    fmt::print("cpu: {}, threads: {}; median of 3 runs\n\n", cpu_model(), omp_get_max_threads());
  for (const AnalysisTiming& t : timings) {
    records.push_back({{"analysis", t.name}, {"seconds", t.seconds}, {"shape", t.shape}});
    if (!a.json) fmt::print("{:<64} {:>8.3f} s  ({})\n", t.name, t.seconds, t.shape);
  }
  if (a.json)
    fmt::print("{}\n",
               nlohmann::json{
                   {"cpu", cpu_model()}, {"threads", omp_get_max_threads()}, {"analyses", records}}
                   .dump());
  return 0;
}

// How cost grows with the sequence length (B = 64) and the batch (T = 50), one layer of each
// kind at E=40 H=4 K=20: train ms, its growth over the previous row, and the training
// runner's workspace memory.
int run_scaling_bench(const BenchArgs& a) {
  struct Point {
    int batch, seq_len;
  };
  std::vector<Point> points;
  for (int T : {50, 100, 200, 400, 800, 1600}) points.push_back({64, T});
  for (int B : {64, 128, 256, 512, 1024}) points.push_back({B, 50});
  nlohmann::json records = nlohmann::json::array();
  if (!a.json)
    fmt::print(
        "cpu: {}, threads: {}, one layer, E=40 H=4 K=20\n\n{:<8} {:>5} {:>5} {:>10} {:>8} {:>12}\n",
        cpu_model(), omp_get_max_threads(), "model", "B", "T", "train ms", "growth",
        "workspace MB");
  for (MixerKind kind : {MixerKind::Linear, MixerKind::Softmax, MixerKind::Mesa}) {
    double previous_ms = 0.0;
    for (size_t i = 0; i < points.size(); ++i) {
      BenchShape shape;
      shape.batch = points[i].batch;
      shape.seq_len = points[i].seq_len;
      const StepTiming t = time_model(shape, {kind, 1}, a.seconds, /*min_reps=*/3);
      // Growth over the previous row of the same sweep (none at a sweep's first row).
      const bool first_of_sweep = i == 0 || (points[i].seq_len == 50 && points[i].batch == 64);
      const double growth = first_of_sweep ? 0.0 : t.train_ms / previous_ms;
      previous_ms = t.train_ms;
      records.push_back({{"kind", t.kind},
                         {"batch", shape.batch},
                         {"seq_len", shape.seq_len},
                         {"train_ms", t.train_ms},
                         {"fwd_ms", t.fwd_ms},
                         {"growth", growth},
                         {"workspace_bytes", t.workspace_bytes}});
      if (!a.json)
        fmt::print("{:<8} {:>5} {:>5} {:>10.2f} {:>8} {:>12.1f}\n", t.kind, shape.batch,
                   shape.seq_len, t.train_ms,
                   growth > 0 ? fmt::format("{:.2f}x", growth) : std::string("-"),
                   t.workspace_bytes / 1048576.0);
    }
  }
  if (a.json)
    fmt::print("{}\n",
               nlohmann::json{
                   {"cpu", cpu_model()}, {"threads", omp_get_max_threads()}, {"scaling", records}}
                   .dump());
  return 0;
}

int run_bench(const BenchArgs& a) {
  if (a.analyses) return run_analysis_bench(a);
  if (a.scaling) return run_scaling_bench(a);
  const BenchShape shape;
  const double ceiling = gemm_ceiling_gflops();
  const std::vector<BenchModel> configs = {
      {MixerKind::Linear, 1},        {MixerKind::Linear, 2},    {MixerKind::Linear, 6},
      {MixerKind::Softmax, 2},       {MixerKind::Mesa, 1},      {MixerKind::Mesa, 2},
      {MixerKind::Softmax, 7, true}, {MixerKind::Mesa, 2, true}};
  nlohmann::json records = nlohmann::json::array();
  if (!a.json)
    fmt::print(
        "cpu: {}, threads: {}, B={} T={} E={} H={} K={}\nGEMM ceiling (float 1024^3, all "
        "threads): {:.1f} GFLOP/s\n\n{:<13} {:>6} {:>10} {:>10} {:>10} {:>9} {:>9}\n",
        cpu_model(), omp_get_max_threads(), shape.batch, shape.seq_len, shape.embed_dim,
        shape.heads, shape.key_size, ceiling, "model", "layers", "train ms", "GFLOP/s", "% ceiling",
        "fwd ms", "GFLOP/s");
  for (const BenchModel& m : configs) {
    if (m.kind == MixerKind::Mesa && !a.include_mesa) continue;
    StepTiming t = time_model(shape, m, a.seconds);
    t.fraction_of_ceiling = t.train_gflops / ceiling;
    records.push_back({{"kind", t.kind},
                       {"layers", t.layers},
                       {"train_ms", t.train_ms},
                       {"fwd_ms", t.fwd_ms},
                       {"gflops", t.train_gflops},
                       {"fwd_gflops", t.fwd_gflops},
                       {"fraction_of_ceiling", t.fraction_of_ceiling}});
    if (!a.json)
      fmt::print("{:<13} {:>6} {:>10.2f} {:>10.1f} {:>9.0f}% {:>9.2f} {:>9.1f}\n", t.kind, t.layers,
                 t.train_ms, t.train_gflops, 100 * t.fraction_of_ceiling, t.fwd_ms, t.fwd_gflops);
  }
  // What a user's `mesalab train` pays: the default run config, batch drawing included.
  const RunConfig run = make_run_config(nlohmann::json::object(), {});
  const EndToEndTiming e = time_end_to_end(run, a.seconds);
  const nlohmann::json end_to_end = {{"config", "default run config (mesalab train)"},
                                     {"data_ms", e.data_ms},
                                     {"model_ms", e.model_ms},
                                     {"step_ms", e.step_ms},
                                     {"step_over_model", e.step_ms / e.model_ms}};
  if (!a.json)
    fmt::print(
        "\nend to end, default run config (mesalab train): batch drawing {:.2f} ms; training step "
        "{:.2f} ms alone, {:.2f} ms with its batch ({:.2f}x)\n",
        e.data_ms, e.model_ms, e.step_ms, e.step_ms / e.model_ms);
  if (a.json)
    fmt::print("{}\n", nlohmann::json{{"cpu", cpu_model()},
                                      {"threads", omp_get_max_threads()},
                                      {"ceiling_gflops", ceiling},
                                      {"records", records},
                                      {"end_to_end", end_to_end}}
                           .dump());
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& root) {
  auto* app = root.add_subcommand("bench", "Time training steps and forwards (B=256, T=50)");
  auto args = std::make_shared<BenchArgs>();
  app->add_flag("--json", args->json, "one JSON record per configuration");
  app->add_option("--seconds", args->seconds, "time per measurement")->check(CLI::PositiveNumber);
  app->add_flag("!--no-mesa", args->include_mesa, "skip the mesa configurations");
  app->add_flag("--scaling", args->scaling,
                "time one layer of each kind at T = 50..1600 (B = 64) and B = 64..1024 (T = 50)");
  app->add_flag(
      "--analyses", args->analyses,
      "time the analyses instead (probe grid of a 6-layer model, RevAlg-d, interpolation, a "
      "sensitivity record)");
  return {app, [args] { return run_bench(*args); }};
}

}  // namespace mesalab::cli
