#pragma once
// Interpolating a trained linear-attention model with its RevAlg-d (SPEC_EXPERIMENTS 4): every
// layer at once mixes the trained kernels (Q, K, V, O) and RevAlg-d's fixed ones (Q', K', V',
// O', analysis/revalg_d.hpp) as
//   A = mask((1 - alpha) Q K^T + alpha Q' K'^T),   out = (1 - alpha) O (A V) + alpha O' (A V'),
// with the residual add and clip unchanged (the paper uses alpha = 1/2). Per head this is a
// linear-attention head of key size K + E:
//   Wq* = [(1 - alpha) Wq_h, alpha Q'_h],  Wk* = [Wk_h, K'_h],  Wv* = [Wv_h, V'_h],
//   P*  = [(1 - alpha) P_h ; alpha P'_h],
// so it is scored with the ordinary transformer. The protocol retrains the run from its seed
// (the same trajectory, which the replay checks against the run's metrics.jsonl) and at every
// evaluation scores the interpolation of the current weights with the final model's RevAlg-d.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/revalg_d.hpp"
#include "model/transformer.hpp"
#include "train/run_config.hpp"

namespace mesalab {

// The model config of the interpolation: the trained one with key size K + E.
ModelConfig interpolated_config(const ModelConfig& trained);

// Parameters of `interpolated` (built from interpolated_config) mixing the trained model's
// parameters with RevAlg-d's (revalg_d_params) at weight alpha in [0, 1].
template <class S>
std::vector<S> interpolated_params(const Transformer& trained, const S* trained_params,
                                   const Transformer& revalg, const double* revalg_params,
                                   const Transformer& interpolated, double alpha);

struct InterpolationPoint {
  int64_t step = 0;
  double model = 0.0;         // the transformer's mean test loss at this step
  double interpolated = 0.0;  // the interpolated model's
  double recorded = 0.0;      // the run's metrics.jsonl test loss at this step (NaN if none)
};

struct InterpolationResult {
  double alpha = 0.5;
  std::vector<InterpolationPoint> points;  // every evaluation of the replayed training
  double revalg_d = 0.0;                   // RevAlg-d of the final model alone, mean test loss
  // max |model - recorded| over the points that have a recorded loss: 0 when the replay
  // reproduced the run's trajectory bit for bit.
  double replay_max_difference = 0.0;
};

// Retrains `cfg` from its seed in scratch_dir (deleted afterwards), scoring at every evaluation
// the interpolation with the RevAlg-d of `final_params` (the run's last checkpoint) on the run's
// fixed test set. `recorded`: (step, test_loss) of the run's metrics.jsonl, for the replay check.
// Throws Error naming why if the run is not RevAlg-d eligible or alpha is outside [0, 1].
InterpolationResult interpolate_run(const RunConfig& cfg, const std::vector<float>& final_params,
                                    const std::vector<std::pair<int64_t, double>>& recorded,
                                    const std::filesystem::path& scratch_dir, double alpha,
                                    bool progress);

// {"alpha", "revalg_d", "replay_max_difference", "steps": [...], "model": [...],
//  "interpolated": [...], "recorded": [...]} (non-finite as null).
nlohmann::json interpolation_json(const InterpolationResult& result);
// The inverse (for a cached result); throws Error on a malformed document.
InterpolationResult interpolation_from_json(const nlohmann::json& j);

}  // namespace mesalab
