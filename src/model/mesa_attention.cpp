#include "model/mesa_attention.hpp"

#include "core/error.hpp"

namespace mesalab {

size_t mesa_attention_cache_size(const AttentionShape&) { return 0; }
size_t mesa_attention_scratch_size(const AttentionShape&) { return 0; }

template <class S>
void mesa_attention_forward(const AttentionShape&, const MesaOptions&, const S*, const S*,
                            const S*, const S*, S*, S*) {
  fail("the mesa layer is not implemented yet");
}

template <class S>
void mesa_attention_backward(const AttentionShape&, const MesaOptions&, const S*, const S*,
                             const S*, const S*, const S*, const S*, S*, S*, S*, S*, S*) {
  fail("the mesa layer is not implemented yet");
}

#define MESALAB_INSTANTIATE(S)                                                                \
  template void mesa_attention_forward<S>(const AttentionShape&, const MesaOptions&, const S*, \
                                          const S*, const S*, const S*, S*, S*);              \
  template void mesa_attention_backward<S>(const AttentionShape&, const MesaOptions&,         \
                                           const S*, const S*, const S*, const S*, const S*,  \
                                           const S*, S*, S*, S*, S*, S*);
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
