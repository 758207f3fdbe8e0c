#include "model/official_layout.hpp"

#include <algorithm>
#include <vector>

namespace mesalab {

// o (H*K, E): our row h*K + j is the official row j*H + h.
template <class S>
bool mesa_params_from_official(const Transformer& model, S* values) {
  const ModelConfig& c = model.config();
  const size_t E = size_t(c.embed_dim), H = size_t(c.heads), K = size_t(c.key_size);
  bool converted = false;
  std::vector<S> rows(H * K * E);
  for (int l = 0; l < c.layers(); ++l) {
    if (c.mixers[size_t(l)] != MixerKind::Mesa) continue;
    converted = true;
    const LayerOffsets& o = model.layer(l);
    std::swap_ranges(values + o.k, values + o.k + E * H * K, values + o.v);
    const S* official = values + o.o;
    for (size_t h = 0; h < H; ++h)
      for (size_t j = 0; j < K; ++j)
        std::copy_n(official + (j * H + h) * E, E, rows.begin() + (h * K + j) * E);
    std::copy(rows.begin(), rows.end(), values + o.o);
  }
  return converted;
}

template bool mesa_params_from_official<float>(const Transformer&, float*);
template bool mesa_params_from_official<double>(const Transformer&, double*);

}  // namespace mesalab
