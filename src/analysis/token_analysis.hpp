#pragma once
// Token analysis (SPEC_EXPERIMENTS 7, official tokenanalyser): does a raw-token model build
// the mesa optimizer's data set itself? From the residual stream x_l at token t, one
// least-squares probe (probes.hpp: minimum-norm, no bias, in-sample) per lag k = 0..K decodes
// the raw observation u_{t-k}. At the input (l = 0) only u_t (plus positional codes) is
// there; if the first (softmax) block copies u_{t-1}, u_{t-2}, ... into position t, the
// probes after it recover those lags.
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/probes.hpp"

namespace mesalab {

struct LagProbes {
  int layer = 0, token = 0;    // probed stream x_layer at token index t
  std::vector<ProbeFit> fits;  // lag k = 0..max_lag (only lags with t - k >= 0)
};

// Probes of u_{t-k}, k = 0..max_lag, from the activations of `layer` (0..L) at token index
// `token` (0..T-1), on acts' batch; u = the batch's observations (states). Throws Error
// (bad input) for a layer, token or max_lag out of range or a batch without states.
LagProbes lag_probes(const LayerActivations& acts, const TokenBatch& batch, int layer, int token,
                     int max_lag);

// {"layer", "token", "lags": [k...], "loss": [...], "r2": [...]}.
nlohmann::json lag_probes_json(const LagProbes& probes);

// The lag probes of a run's model at the input (layer 0) and at `layer`, one fresh batch of
// `batch` sequences per test seed (RngPurpose::Probe, step 0); token < 0 means T - 1.
struct LagProbeSeeds {
  std::vector<LagProbes> input, probed;  // one per seed
};
LagProbeSeeds lag_probes_over_seeds(const Transformer& model, const std::vector<float>& params,
                                    const RunConfig& cfg, const std::vector<uint64_t>& seeds,
                                    int batch, int layer, int token, int max_lag);

// Mean over seeds of R^2 per lag.
std::vector<double> mean_r2(const std::vector<LagProbes>& per_seed);

}  // namespace mesalab
