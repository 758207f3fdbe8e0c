#include "analysis/revalg_d.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/stats.hpp"
#include "train/evaluation.hpp"

namespace mesalab {

std::vector<RevAlgDLayer> revalg_d_scalars(const std::vector<LayerStructure>& structure) {
  std::vector<RevAlgDLayer> layers;
  for (const LayerStructure& ls : structure) {
    RevAlgDLayer layer;
    for (const HeadStructure& hs : ls.heads) {
      RevAlgDHead h;
      for (int a = 0; a < kTokenSlots; ++a)
        for (int b = 0; b < kTokenSlots; ++b) {
          h.q[a][b] = hs.qk.blocks[a][b].scalar;
          h.v[a][b] = hs.pv.blocks[a][b].scalar;
        }
      layer.push_back(h);
    }
    layers.push_back(std::move(layer));
  }
  return layers;
}

std::string revalg_d_ineligibility(const RunConfig& cfg) {
  const ModelConfig& m = cfg.model;
  if (!is_constructed(cfg.tokens))
    return fmt::format("the tokens are '{}', not constructed", token_format_name(cfg.tokens));
  if (const std::string why = structure_ineligibility(m); !why.empty()) return why;
  for (int l = 0; l < m.layers(); ++l)
    if (m.mixers[size_t(l)] != MixerKind::Linear)
      return fmt::format("layer {} is '{}', not linear attention", l + 1,
                         mixer_name(m.mixers[size_t(l)]));
  if (m.layer_norm) return "it has LayerNorm (model.layer_norm)";
  if (m.mlp) return "it has an MLP (model.mlp)";
  if (m.positional_codes) return "it adds positional codes (model.positional_codes)";
  if (m.positional_codes_qk)
    return "its first block's queries and keys see positional codes (model.positional_codes_qk)";
  return {};
}

ModelConfig revalg_d_config(const ModelConfig& trained) {
  ModelConfig c = trained;
  c.key_size = trained.embed_dim;
  c.mixers.assign(trained.mixers.size(), MixerKind::Linear);
  c.detect_anomaly = false;
  return c;
}

std::vector<double> revalg_d_params(const Transformer& model,
                                    const std::vector<RevAlgDLayer>& layers) {
  const ModelConfig& c = model.config();
  const int E = c.embed_dim, D = c.data_dim, H = c.heads, HK = H * c.key_size;
  if (c.key_size != E || E != kTokenSlots * D || int(layers.size()) != c.layers())
    fail("revalg_d_params: the model must be revalg_d_config of a {}-layer model", layers.size());
  std::vector<double> params(model.num_params(), 0.0);
  for (int l = 0; l < c.layers(); ++l) {
    if (int(layers[size_t(l)].size()) != H)
      fail("revalg_d_params: layer {} has {} heads, the model {}", l, layers[size_t(l)].size(), H);
    const LayerOffsets& o = model.layer(l);
    auto wq = mat(params.data() + o.q, E, HK), wk = mat(params.data() + o.k, E, HK);
    auto wv = mat(params.data() + o.v, E, HK), wo = mat(params.data() + o.o, HK, E);
    for (int h = 0; h < H; ++h) {
      const RevAlgDHead& head = layers[size_t(l)][size_t(h)];
      for (int a = 0; a < kTokenSlots; ++a)
        for (int b = 0; b < kTokenSlots; ++b)
          for (int j = 0; j < D; ++j) {
            wq(a * D + j, h * E + b * D + j) = head.q[a][b];
            wv(a * D + j, h * E + b * D + j) = head.v[a][b];
          }
      for (int j = 0; j < E; ++j) {
        wk(j, h * E + j) = 1.0;
        wo(h * E + j, j) = 1.0;
      }
    }
  }
  return params;
}

RevAlgDComparison compare_revalg_d(const RunConfig& cfg, const Transformer& model,
                                   const std::vector<float>& params) {
  if (const std::string why = revalg_d_ineligibility(cfg); !why.empty())
    fail("revalg: RevAlg-d needs a linear-attention model on constructed tokens: {}", why);
  const std::vector<double> params_d(params.begin(), params.end());
  const std::vector<LayerStructure> structure = weight_structure(model, params_d.data());
  RevAlgDComparison out;
  out.layers = revalg_d_scalars(structure);
  int heads = 0;
  for (const LayerStructure& ls : structure)
    for (const HeadStructure& hs : ls.heads) {
      out.qk_energy_share += hs.qk.identity_energy_fraction;
      out.pv_energy_share += hs.pv.identity_energy_fraction;
      ++heads;
    }
  out.qk_energy_share /= heads;
  out.pv_energy_share /= heads;

  const Transformer revalg(revalg_d_config(cfg.model));
  const std::vector<double> revalg_params = revalg_d_params(revalg, out.layers);
  const std::vector<float> revalg_float(revalg_params.begin(), revalg_params.end());
  const int T = cfg.data.seq_len, B = cfg.train.test_batch_size;
  const std::vector<TokenBatch> test_set =
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, B);
  BatchRunner<float> model_runner(model, B, T, /*forward_only=*/true),
      revalg_runner(revalg, B, T, /*forward_only=*/true);
  out.curves = {{"model", per_step_loss(model_runner, params.data(), test_set)},
                {"revalg_d", per_step_loss(revalg_runner, revalg_float.data(), test_set)}};
  return out;
}

nlohmann::json revalg_d_json(const RevAlgDComparison& c) {
  nlohmann::json layers = nlohmann::json::array();
  for (const RevAlgDLayer& layer : c.layers) {
    nlohmann::json heads = nlohmann::json::array();
    for (const RevAlgDHead& h : layer) heads.push_back({{"q", h.q}, {"v", h.v}});
    layers.push_back(heads);
  }
  nlohmann::json j = {{"qk_energy_share", c.qk_energy_share},
                      {"pv_energy_share", c.pv_energy_share},
                      {"layers", layers}};
  for (const auto& [name, curve] : c.curves)
    j[name] = {{"mean", curve_mean(curve)}, {"per_t", curve}};
  return j;
}

}  // namespace mesalab
