#include "analysis/token_analysis.hpp"

#include "core/error.hpp"

namespace mesalab {

LagProbes lag_probes(const LayerActivations& acts, const TokenBatch& batch, int layer, int token,
                     int max_lag) {
  if (layer < 0 || layer > acts.layers)
    fail("token analysis: layer {} out of range (0 = the input .. {})", layer, acts.layers);
  if (token < 0 || token >= acts.seq_len)
    fail("token analysis: token {} out of range (0 .. {})", token, acts.seq_len - 1);
  if (max_lag < 0) fail("token analysis: max_lag must be >= 0 (got {})", max_lag);
  if (batch.states.empty() || batch.batch != acts.batch || batch.seq_len != acts.seq_len)
    fail("token analysis: the batch's states must come with the activations ({} x {})", acts.batch,
         acts.seq_len);
  const int B = acts.batch, D = batch.dim, T1 = batch.seq_len + 1;
  LagProbes out{layer, token, {}};
  std::vector<double> y(size_t(B) * D);
  for (int k = 0; k <= max_lag && token - k >= 0; ++k) {
    for (int b = 0; b < B; ++b)
      for (int d = 0; d < D; ++d)
        y[size_t(b) * D + d] = batch.states[(size_t(b) * T1 + size_t(token - k)) * D + d];
    out.fits.push_back(fit_probe(acts.at(layer, token), y.data(), B, acts.width, D));
  }
  return out;
}

LagProbeSeeds lag_probes_over_seeds(const Transformer& model, const std::vector<float>& params,
                                    const RunConfig& cfg, const std::vector<uint64_t>& seeds,
                                    int batch, int layer, int token, int max_lag) {
  LagProbeSeeds out;
  for (uint64_t seed : seeds) {
    const TokenBatch data = make_token_batch(cfg, seed, RngPurpose::Probe, 0, batch);
    const LayerActivations acts = collect_activations(model, params.data(), data);
    const int t = token < 0 ? acts.seq_len - 1 : token;
    out.input.push_back(lag_probes(acts, data, 0, t, max_lag));
    out.probed.push_back(lag_probes(acts, data, layer, t, max_lag));
  }
  return out;
}

std::vector<double> mean_r2(const std::vector<LagProbes>& per_seed) {
  std::vector<double> mean;
  for (const LagProbes& p : per_seed) {
    mean.resize(p.fits.size(), 0.0);
    for (size_t k = 0; k < p.fits.size(); ++k) mean[k] += p.fits[k].r2 / double(per_seed.size());
  }
  return mean;
}

nlohmann::json lag_probes_json(const LagProbes& probes) {
  nlohmann::json lags = nlohmann::json::array(), loss = lags, r2 = lags;
  for (size_t k = 0; k < probes.fits.size(); ++k) {
    lags.push_back(k);
    loss.push_back(probes.fits[k].loss);
    r2.push_back(probes.fits[k].r2);
  }
  return {
      {"layer", probes.layer}, {"token", probes.token}, {"lags", lags}, {"loss", loss}, {"r2", r2}};
}

}  // namespace mesalab
