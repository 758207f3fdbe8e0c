#pragma once
// RevAlg-d (SPEC_EXPERIMENTS 3, the official four_head_ks40 construction): an L-layer
// linear-attention model on constructed tokens e = [0, s_t, s_t, s_{t-1}] (E = 4D), compressed
// to 16 + 16 scalars per head and layer. With q_h, v_h the 4 x 4 grids of block scalars of the
// trained head's M_QK = Wq_h Wk_h^T and M_PV = Wv_h P_h (analysis/revalg.hpp, tr(block) / D),
//   Q_h = q_h (x) I_D,  V_h = v_h (x) I_D   (E x E),
//   out_t = sum_h sum_{i<=t} (e_t^T Q_h e_i) (e_i^T V_h)   (row vectors),
// followed by the model's residual add and clip. It is itself a linear-attention transformer
// with key size E: Wq_h = Q_h, Wk_h = I_E, Wv_h = V_h, P_h = I_E, which is how it is scored.
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "analysis/revalg.hpp"
#include "model/transformer.hpp"
#include "train/run_config.hpp"

namespace mesalab {

struct RevAlgDHead {
  std::array<std::array<double, kTokenSlots>, kTokenSlots> q{}, v{};
};
using RevAlgDLayer = std::vector<RevAlgDHead>;  // one per head

// The scalars of every layer and head, read from weight_structure's block grids.
std::vector<RevAlgDLayer> revalg_d_scalars(const std::vector<LayerStructure>& structure);

// Empty if RevAlg-d applies: constructed tokens, E = 4 D, every layer linear attention, no
// LayerNorm, MLP, embedding or positional codes. Otherwise the reason.
std::string revalg_d_ineligibility(const RunConfig& cfg);

// The RevAlg-d transformer of a trained model's config: the same layers, heads, clip and
// data, key size E.
ModelConfig revalg_d_config(const ModelConfig& trained);

// Its parameters (for a Transformer built from revalg_d_config) from the scalars.
std::vector<double> revalg_d_params(const Transformer& revalg_model,
                                    const std::vector<RevAlgDLayer>& layers);

struct RevAlgDComparison {
  std::vector<RevAlgDLayer> layers;
  // Mean over layers and heads of the share of ||M||_F^2 the block scalars carry (the block
  // grids' identity_energy_fraction), for M_QK and M_PV.
  double qk_energy_share = 0.0, pv_energy_share = 0.0;
  // ("model", per-t curve), ("revalg_d", per-t curve) on the run's fixed test set.
  std::vector<std::pair<std::string, std::vector<double>>> curves;
};

// RevAlg-d of a trained run, scored next to the model on the run's fixed test set (as eval).
// Throws Error naming why if revalg_d_ineligibility(cfg) is not empty.
RevAlgDComparison compare_revalg_d(const RunConfig& cfg, const Transformer& model,
                                   const std::vector<float>& params);

// {"qk_energy_share", "pv_energy_share", "layers": [[{"q": 4x4, "v": 4x4} per head] per layer],
//  "model": {"mean", "per_t"}, "revalg_d": {"mean", "per_t"}}
nlohmann::json revalg_d_json(const RevAlgDComparison& comparison);

}  // namespace mesalab
