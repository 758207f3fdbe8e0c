// Checkpoints of format 1 stored mesa layers in the official layout (model/official_layout.hpp):
// they load converted, with their Adam moments, and other layers untouched.
#include "train/checkpoint.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "model/official_layout.hpp"
#include "train/run_config.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;

// The official layout of one per-parameter vector, written out by hand (independently of
// mesa_params_from_official): mesa k and v swapped, o row j*H + h = our row h*K + j.
std::vector<float> to_official(const Transformer& model, const std::vector<float>& ours) {
  std::vector<float> official = ours;
  const ModelConfig& c = model.config();
  const int E = c.embed_dim, H = c.heads, K = c.key_size;
  for (int l = 0; l < c.layers(); ++l) {
    if (c.mixers[size_t(l)] != MixerKind::Mesa) continue;
    const LayerOffsets& o = model.layer(l);
    for (size_t i = 0; i < size_t(E) * H * K; ++i) {
      official[o.k + i] = ours[o.v + i];
      official[o.v + i] = ours[o.k + i];
    }
    for (int h = 0; h < H; ++h)
      for (int j = 0; j < K; ++j)
        for (int e = 0; e < E; ++e)
          official[o.o + (size_t(j) * H + h) * E + e] = ours[o.o + (size_t(h) * K + j) * E + e];
  }
  return official;
}

std::vector<float> counting(size_t n, float offset) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = offset + float(i);
  return v;
}

TEST(Checkpoint, FormatOneMesaLayersLoadConverted) {
  const fs::path dir = fs::temp_directory_path() / "mesalab_checkpoint_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const RunConfig cfg =
      make_run_config(nullptr, {"model.layer=[\"lsa\", \"mesa\"]", "model.heads=2",
                                "model.key_size=3", "model.embed_dim=8", "data.dim=2"});
  const Transformer model(cfg.model);
  TrainState state;
  state.step = 3;
  state.params = counting(model.num_params(), 0.0f);
  state.adam_m = counting(model.num_params(), 0.5f);
  state.adam_v = counting(model.num_params(), 0.25f);

  // A format-1 file: the same tensors in the official layout.
  TrainState official = state;
  official.params = to_official(model, state.params);
  official.adam_m = to_official(model, state.adam_m);
  official.adam_v = to_official(model, state.adam_v);
  ASSERT_NE(official.params, state.params);  // the layouts differ for this model
  save_checkpoint(dir / "v1.safetensors", model, cfg.resolved, official);
  SafetensorsFile file = load_safetensors(dir / "v1.safetensors");
  file.metadata["format_version"] = "1";
  save_safetensors(dir / "v1.safetensors", file);

  const TrainState loaded = load_checkpoint(dir / "v1.safetensors", model);
  EXPECT_EQ(loaded.params, state.params);
  EXPECT_EQ(loaded.adam_m, state.adam_m);
  EXPECT_EQ(loaded.adam_v, state.adam_v);

  // The current format is stored as it is.
  save_checkpoint(dir / "v2.safetensors", model, cfg.resolved, state);
  EXPECT_EQ(load_checkpoint(dir / "v2.safetensors", model).params, state.params);

  // An unknown version is refused.
  file.metadata["format_version"] = "99";
  save_safetensors(dir / "v99.safetensors", file);
  EXPECT_THROW(load_checkpoint(dir / "v99.safetensors", model), Error);
}

// The conversion is a no-op without mesa layers, and a permutation (its own inverse only for
// the k/v swap) with them.
TEST(OfficialLayout, ConvertsOnlyMesaLayers) {
  const RunConfig lsa = make_run_config(nullptr, {"model.heads=2", "model.key_size=3"});
  const Transformer lsa_model(lsa.model);
  std::vector<float> values = counting(lsa_model.num_params(), 1.0f);
  const std::vector<float> before = values;
  EXPECT_FALSE(mesa_params_from_official(lsa_model, values.data()));
  EXPECT_EQ(values, before);

  const RunConfig mesa =
      make_run_config(nullptr, {"model.layer=mesa", "model.heads=2", "model.key_size=3"});
  const Transformer mesa_model(mesa.model);
  std::vector<float> ours = counting(mesa_model.num_params(), 1.0f);
  std::vector<float> converted = to_official(mesa_model, ours);
  EXPECT_TRUE(mesa_params_from_official(mesa_model, converted.data()));
  EXPECT_EQ(converted, ours);
}

}  // namespace
}  // namespace mesalab
