#include "train/step_benchmark.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include "core/eigen_maps.hpp"
#include "core/rng.hpp"
#include "model/batch_runner.hpp"
#include "train/evaluation.hpp"
#include "train/optimizer.hpp"

namespace mesalab {

// The model a BenchModel stands for; data_dim = E/4 as for constructed tokens.
static ModelConfig bench_config(const BenchShape& s, const BenchModel& m) {
  ModelConfig cfg;
  cfg.embed_dim = s.embed_dim;
  cfg.data_dim = s.embed_dim / 4;
  cfg.heads = s.heads;
  cfg.key_size = s.key_size;
  cfg.mixers.assign(size_t(m.layers), m.kind);
  if (m.full) {
    cfg.input_dim = cfg.data_dim;
    cfg.positional_codes = true;
    cfg.layer_norm = true;
    cfg.mlp = true;
    cfg.mlp_hidden = 2 * s.embed_dim;
  }
  return cfg;
}

double forward_flops(const BenchShape& s, const BenchModel& m) {
  const ModelConfig c = bench_config(s, m);
  const double B = s.batch, T = s.seq_len, E = s.embed_dim, H = s.heads, K = s.key_size;
  double per_layer = 2 * B * T * E * (H * K) * 4 + 4 * B * H * T * T * K;
  if (m.kind == MixerKind::Mesa) per_layer += B * H * T * (9 * K * K + 2 * K);
  if (c.mlp) per_layer += 4 * B * T * E * c.mlp_hidden;
  double flops = per_layer * m.layers;
  if (c.embedding()) flops += 2 * B * T * (double(c.input_dim) * E + E * c.data_dim);
  return flops;
}

// Runs fn repeatedly for about `seconds` after two warm-up calls; returns the median ms.
template <class Fn>
static double median_ms(Fn&& fn, double seconds, int min_reps = 5) {
  using clock = std::chrono::steady_clock;
  fn();
  fn();
  std::vector<double> times;
  const auto start = clock::now();
  while (int(times.size()) < min_reps ||
         std::chrono::duration<double>(clock::now() - start).count() < seconds) {
    const auto t0 = clock::now();
    fn();
    times.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    if (times.size() >= 1000) break;
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

double gemm_ceiling_gflops(int n) {
  RowMatrix<float> a = RowMatrix<float>::Random(n, n), b = RowMatrix<float>::Random(n, n);
  RowMatrix<float> c(n, n);
  // Eigen is built single-threaded (EIGEN_DONT_PARALLELIZE), so split the output rows.
  const double ms = median_ms(
      [&] {
        const int threads = omp_get_max_threads();
#pragma omp parallel for schedule(static)
        for (int t = 0; t < threads; ++t) {
          const int r0 = n * t / threads, r1 = n * (t + 1) / threads;
          c.middleRows(r0, r1 - r0).noalias() = a.middleRows(r0, r1 - r0) * b;
        }
      },
      1.0);
  return 2.0 * double(n) * n * n / (ms * 1e6);
}

StepTiming time_model(const BenchShape& s, const BenchModel& bm, double seconds, int min_reps) {
  const ModelConfig cfg = bench_config(s, bm);
  const Transformer model(cfg);
  std::vector<float> params(model.num_params()), grads(model.num_params());
  std::vector<float> m(model.num_params(), 0.0f), v(model.num_params(), 0.0f);
  model.init_params(params.data(), 1);
  // O(1) random tokens: timing does not depend on the values, only finiteness matters.
  std::vector<float> tokens(size_t(s.batch) * s.seq_len * cfg.token_dim());
  std::vector<float> labels(size_t(s.batch) * s.seq_len * cfg.data_dim);
  Rng rng{7};
  for (float& x : tokens) x = float(rng.uniform(-1, 1));
  for (float& x : labels) x = float(rng.uniform(-1, 1));
  BatchRunner<float> runner(model, s.batch, s.seq_len);
  std::vector<double> sq_err(size_t(s.batch) * s.seq_len);
  OptimConfig optim;
  int64_t step = 0;

  StepTiming r;
  r.kind = (bm.full ? "full-" : "") + std::string(mixer_name(bm.kind));
  r.layers = bm.layers;
  r.train_ms = median_ms(
      [&] {
        runner.loss_and_grad(params.data(), tokens.data(), labels.data(), grads.data());
        adamw_step(optim, step++, params.data(), grads.data(), m.data(), v.data(), grads.size());
      },
      seconds, min_reps);
  // Forwards as evaluations and analyses run them: on a forward-only runner.
  BatchRunner<float> forward_runner(model, s.batch, s.seq_len, /*forward_only=*/true);
  r.fwd_ms = median_ms(
      [&] {
        forward_runner.token_errors(params.data(), tokens.data(), labels.data(), sq_err.data());
      },
      seconds, min_reps);
  const double fwd = forward_flops(s, bm);
  r.train_gflops = 3 * fwd / (r.train_ms * 1e6);
  r.fwd_gflops = fwd / (r.fwd_ms * 1e6);
  r.workspace_bytes =
      double(omp_get_max_threads()) *
      double(model.workspace_sizes(std::min(s.batch, kChunkSequences), s.seq_len).total()) *
      sizeof(float);
  return r;
}

EndToEndTiming time_end_to_end(const RunConfig& cfg, double seconds) {
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params()), grads(model.num_params());
  std::vector<float> m(model.num_params(), 0.0f), v(model.num_params(), 0.0f);
  model.init_params(params.data(), cfg.train.seed);
  BatchRunner<float> runner(model, cfg.train.batch_size, cfg.data.seq_len);
  const TokenSource source = token_source(cfg);
  TokenBatch batch;
  int64_t step = 0;
  auto draw = [&] {
    fill_token_batch(source, cfg.train.seed, RngPurpose::TrainData, uint64_t(step),
                     cfg.train.batch_size, batch, /*keep_states=*/false);
  };
  auto update = [&] {
    runner.loss_and_grad(params.data(), batch.tokens.data(), batch.labels.data(), grads.data());
    adamw_step(cfg.optim, step++, params.data(), grads.data(), m.data(), v.data(), grads.size());
  };
  draw();
  EndToEndTiming r;
  r.data_ms = median_ms([&] { draw(), ++step; }, seconds);
  r.model_ms = median_ms(update, seconds);
  r.step_ms = median_ms([&] { draw(), update(); }, seconds);
  return r;
}

}  // namespace mesalab
