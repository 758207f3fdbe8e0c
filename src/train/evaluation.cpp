#include "train/evaluation.hpp"

#include "core/error.hpp"

namespace mesalab {

TokenSource token_source(const RunConfig& cfg) {
  return TokenSource{cfg.data, cfg.tokens, cfg.model.token_dim()};
}

TokenBatch make_token_batch(const RunConfig& cfg, uint64_t seed, RngPurpose purpose, uint64_t step,
                            int batch) {
  TokenBatch b;
  fill_token_batch(token_source(cfg), seed, purpose, step, batch, b);
  return b;
}

std::vector<TokenBatch> make_test_set(const RunConfig& cfg, uint64_t seed, int count, int batch) {
  std::vector<TokenBatch> set;
  for (int i = 0; i < count; ++i)
    set.push_back(make_token_batch(cfg, seed, RngPurpose::TestData, uint64_t(i), batch));
  return set;
}

std::vector<double> per_step_loss(BatchRunner<float>& runner, const float* params,
                                  const std::vector<TokenBatch>& batches) {
  const int T = runner.seq_len();
  std::vector<double> curve(size_t(T), 0.0);
  std::vector<double> sq_err(size_t(runner.batch()) * T);
  for (const TokenBatch& b : batches) {
    if (b.batch != runner.batch() || b.seq_len != T) fail("evaluation batch has the wrong shape");
    runner.token_errors(params, b.tokens.data(), b.labels.data(), sq_err.data());
    for (int s = 0; s < b.batch; ++s)
      for (int t = 0; t < T; ++t)
        curve[size_t(t)] += sq_err[size_t(s) * T + t] / (2.0 * b.batch * double(batches.size()));
  }
  return curve;
}

}  // namespace mesalab
