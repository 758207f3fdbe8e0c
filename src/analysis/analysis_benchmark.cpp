#include "analysis/analysis_benchmark.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

#include "analysis/interpolation.hpp"
#include "analysis/probes.hpp"
#include "analysis/revalg_d.hpp"
#include "analysis/sensitivity.hpp"
#include "train/evaluation.hpp"
#include "train/presets.hpp"

namespace mesalab {

namespace {

double median_seconds(int repeats, const std::function<void()>& fn) {
  std::vector<double> times;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// A model of the run config with weights large enough that every layer changes the stream.
std::vector<float> random_params(const Transformer& model) {
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 7);
  for (float& p : params) p *= 250.0f;  // init_std 2e-4 -> 0.05
  return params;
}

}  // namespace

std::vector<AnalysisTiming> time_analyses(int repeats) {
  std::vector<AnalysisTiming> out;
  {
    const RunConfig cfg = make_run_config(nullptr, {"model.layers=6"});
    const Transformer model(cfg.model);
    const std::vector<float> params = random_params(model);
    const TokenBatch batch = make_token_batch(cfg, 1, RngPurpose::Probe, 0, 256);
    const double s = median_seconds(repeats, [&] {
      const LayerActivations acts = collect_activations(model, params.data(), batch);
      for (ProbeTarget t : {ProbeTarget::Current, ProbeTarget::Next, ProbeTarget::InverseCurrent,
                            ProbeTarget::Implicit})
        run_probe(acts, batch, t, {});
    });
    out.push_back(
        {"probe grid, 6-layer LSA (4 targets x 7 activations x 50 steps)", s, "B=256 T=50 E=40"});
  }
  const RunConfig cfg = make_run_config(nullptr, {"model.key_size=40"});
  const Transformer model(cfg.model);
  const std::vector<float> params = random_params(model);
  out.push_back({"RevAlg-d extraction + scoring, 2-layer LSA H=4 K=40",
                 median_seconds(repeats, [&] { compare_revalg_d(cfg, model, params); }),
                 "test set 10 x 256, T=50"});
  const RevAlgDComparison c = compare_revalg_d(cfg, model, params);
  const Transformer revalg(revalg_d_config(cfg.model)), mixed(interpolated_config(cfg.model));
  const std::vector<double> revalg_params = revalg_d_params(revalg, c.layers);
  const std::vector<TokenBatch> test_set =
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size);
  BatchRunner<float> runner(mixed, cfg.train.test_batch_size, cfg.data.seq_len,
                            /*forward_only=*/true);
  out.push_back({"interpolated model: weights + one test-set evaluation",
                 median_seconds(repeats,
                                [&] {
                                  const std::vector<float> p =
                                      interpolated_params(model, params.data(), revalg,
                                                          revalg_params.data(), mixed, 0.5);
                                  per_step_loss(runner, p.data(), test_set);
                                }),
                 "key size K + E = 80, test set 10 x 256"});
  {
    // What train.sensitivity_every adds per record on the raw-token preset, next to one
    // training step of the same model (B = 256).
    const RunConfig raw = preset_run_config("fullfledged_softmax_7layer", {});
    const Transformer deep(raw.model);
    std::vector<float> deep_params(deep.num_params());
    deep.init_params(deep_params.data(), raw.train.seed);
    const TokenBatch data = sensitivity_batch(raw, kSensitivityBatch);
    FirstBlockSensitivity<float> sensitivity(deep, kSensitivityBatch, raw.data.seq_len);
    out.push_back(
        {"first-block sensitivity record (train.sensitivity_every), 7-layer softmax",
         median_seconds(repeats,
                        [&] { sensitivity.compute(deep_params.data(), data.tokens.data()); }),
         "64 sequences, k = 1, 24, 49, E = 40 backwards of one block each"});
    const TokenBatch step_batch =
        make_token_batch(raw, raw.train.seed, RngPurpose::TrainData, 0, raw.train.batch_size);
    BatchRunner<float> step_runner(deep, raw.train.batch_size, raw.data.seq_len);
    std::vector<float> grads(deep.num_params());
    out.push_back({"its training step for comparison (forward + backward)",
                   median_seconds(repeats,
                                  [&] {
                                    step_runner.loss_and_grad(
                                        deep_params.data(), step_batch.tokens.data(),
                                        step_batch.labels.data(), grads.data());
                                  }),
                   "B=256 T=50 E=40, configs/fullfledged_softmax_7layer.json"});
  }
  return out;
}

}  // namespace mesalab
