#include "data/token_batch.hpp"

#include "core/error.hpp"

namespace mesalab {

void fill_token_batch(const TokenSource& source, uint64_t seed, RngPurpose purpose, uint64_t step,
                      int batch, TokenBatch& out, bool keep_states) {
  const DataConfig& cfg = source.data;
  validate(cfg);
  if (batch < 1) fail("fill_token_batch: batch must be >= 1, got {}", batch);
  const SharedDynamics shared = shared_dynamics(cfg);
  const int T = cfg.seq_len, O = observed_dim(cfg), W = source.width;
  const size_t hidden_size = size_t(T + 1) * cfg.dim, observed_size = size_t(T + 1) * O;
  out.batch = batch;
  out.seq_len = T;
  out.dim = O;
  out.width = W;
  out.tokens.resize(size_t(batch) * T * W);
  out.labels.resize(size_t(batch) * T * O);
  out.states.resize(keep_states ? size_t(batch) * observed_size : 0);
  for_each_sequence_block(batch, [&](int first, int count) {
    SequenceSampler sampler(cfg, shared);
    // Without an observation model the observations are the hidden states, drawn in place.
    const bool observed_is_hidden = cfg.obs_dim == 0;
    std::vector<double> hidden(observed_is_hidden ? 0 : hidden_size);
    std::vector<double> observed(keep_states ? 0 : observed_size);
    for (int b = first; b < first + count; ++b) {
      double* o = keep_states ? out.states.data() + size_t(b) * observed_size : observed.data();
      Rng rng = sequence_rng(seed, purpose, step, b);
      if (observed_is_hidden) {
        sampler.sample(rng, o, nullptr);
      } else {
        sampler.sample(rng, hidden.data(), o);
      }
      build_tokens(source.format, o, 1, T, O, W, out.tokens.data() + size_t(b) * T * W,
                   out.labels.data() + size_t(b) * T * O);
    }
  });
}

}  // namespace mesalab
