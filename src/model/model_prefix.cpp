#include "model/model_prefix.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace mesalab {

Transformer prefix_model(const Transformer& model, int blocks) {
  ModelConfig c = model.config();
  if (blocks < 1 || blocks > c.layers())
    fail("prefix of {} blocks of a model with {} (allowed: 1..{})", blocks, c.layers(), c.layers());
  c.mixers.resize(size_t(blocks));
  return Transformer(c);
}

template <class S>
std::vector<S> prefix_params(const Transformer& model, const Transformer& prefix, const S* params) {
  std::vector<S> out(prefix.num_params());
  for (const ParamSpec& spec : prefix.layout().specs()) {
    const ParamSpec& from = model.layout().at(spec.name);
    if (from.shape != spec.shape)
      fail("prefix tensor '{}' has another shape than the model's", spec.name);
    std::copy(params + from.offset, params + from.offset + from.size, out.begin() + spec.offset);
  }
  return out;
}

template std::vector<float> prefix_params<float>(const Transformer&, const Transformer&,
                                                 const float*);
template std::vector<double> prefix_params<double>(const Transformer&, const Transformer&,
                                                   const double*);

}  // namespace mesalab
