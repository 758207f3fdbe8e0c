#include "model/batch_runner.hpp"

#include <omp.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/parallel.hpp"

namespace mesalab {

template <class S>
BatchRunner<S>::BatchRunner(const Transformer& model, int batch, int seq_len, bool forward_only)
    : model_(model), batch_(batch), seq_len_(seq_len), forward_only_(forward_only) {
  if (batch < 1 || seq_len < 1) fail("batch size and sequence length must be >= 1");
  const int threads = std::max(1, omp_get_max_threads());
  for (int i = 0; i < threads; ++i)
    workspaces_.push_back(
        model.make_workspace<S>(std::min(batch, kChunkSequences), seq_len, forward_only));
  loss_partials_.assign(size_t(num_chunks()), 0.0);
}

// Calls fn(chunk_index, first_sequence, count, workspace) for every chunk, in parallel.
// An exception in a chunk is re-thrown on the calling thread after the loop (the first
// one in chunk order, so the message is deterministic too).
template <class S>
template <class ChunkFn>
void BatchRunner<S>::for_each_chunk(ChunkFn&& fn) {
  // Workspaces were made for omp_get_max_threads() at construction; a later, larger thread
  // count (omp_set_num_threads) must not index past them.
  if (size_t(omp_get_max_threads()) > workspaces_.size())
    fail_runtime("BatchRunner: {} threads, but workspaces for {} were made at construction",
                 omp_get_max_threads(), workspaces_.size());
  parallel_for(num_chunks(), [&](int c) {
    const int first = c * kChunkSequences;
    const int count = std::min(kChunkSequences, batch_ - first);
    fn(c, first, count, workspaces_[size_t(omp_get_thread_num())]);
  });
}

// One chunk's forward and backward: the gradient of scale / 2 * sum over the scored positions
// (every position when scored is null) of |pred - label|^2 goes into the chunk's partial, and
// d/d tokens into grad_tokens if given. Returns the chunk's squared error over every position
// (per token into token_err if given).
template <class S>
double BatchRunner<S>::chunk_forward_backward(int c, int first, int count, Workspace<S>& ws,
                                              const S* params, const S* tokens, const S* labels,
                                              S scale, const std::vector<char>* scored,
                                              double* token_err, S* grad_tokens) {
  const size_t P = model_.num_params();
  const int T = seq_len_, E = model_.config().token_dim(), D = model_.config().data_dim;
  S* partial = grad_partials_.data() + size_t(c) * P;
  std::fill(partial, partial + P, S(0));
  const S* chunk_tokens = tokens + size_t(first) * T * E;
  const S* chunk_labels = labels + size_t(first) * T * D;
  model_.forward<S>(params, chunk_tokens, count, ws);
  const double sq = squared_error<S>(ws, count, chunk_labels, token_err);
  S* d_pred = ws.d_pred.data();
  squared_error_gradient<S>(ws, count, chunk_labels, scale, d_pred);
  if (scored != nullptr)
    for (int b = 0; b < count; ++b)
      for (int t = 0; t < T; ++t)
        if (!(*scored)[size_t(t)]) std::fill_n(d_pred + (size_t(b) * T + t) * D, D, S(0));
  model_.backward<S>(params, chunk_tokens, count, ws, d_pred, partial, grad_tokens);
  return sq;
}

template <class S>
double BatchRunner<S>::loss_and_grad(const S* params, const S* tokens, const S* labels, S* grads) {
  if (forward_only_) fail("loss_and_grad needs a BatchRunner made without forward_only");
  const int T = seq_len_;
  grad_partials_.resize(size_t(num_chunks()) * model_.num_params());
  const S grad_scale = S(1) / (S(batch_) * S(T));
  for_each_chunk([&](int c, int first, int count, Workspace<S>& ws) {
    loss_partials_[size_t(c)] = chunk_forward_backward(c, first, count, ws, params, tokens, labels,
                                                       grad_scale, nullptr, nullptr, nullptr);
  });
  sum_grad_partials(grads);
  double total = 0.0;
  for (double l : loss_partials_) total += l;
  return total / (2.0 * batch_ * T);
}

// Fixed-order reduction over chunks in double, parallel over parameters: a large batch
// (2^20 sequences = 2^17 partials) keeps its accuracy, and the order fixes the bits.
template <class S>
void BatchRunner<S>::sum_grad_partials(S* grads) {
  const size_t P = model_.num_params();
  const int chunks = num_chunks();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < P; ++i) {
    double sum = double(grad_partials_[i]);
    for (int c = 1; c < chunks; ++c) sum += double(grad_partials_[size_t(c) * P + i]);
    grads[i] = S(sum);
  }
}

template <class S>
double BatchRunner<S>::scored_loss_and_grad(const S* params, const S* tokens, const S* labels,
                                            const std::vector<char>& scored, double scale, S* grads,
                                            S* grad_tokens) {
  if (forward_only_) fail("scored_loss_and_grad needs a BatchRunner made without forward_only");
  const int T = seq_len_, E = model_.config().token_dim();
  if (scored.size() != size_t(T))
    fail("scored positions: {} entries for sequences of {} tokens", scored.size(), T);
  grad_partials_.resize(size_t(num_chunks()) * model_.num_params());
  std::vector<double> token_err(size_t(batch_) * T);
  for_each_chunk([&](int c, int first, int count, Workspace<S>& ws) {
    chunk_forward_backward(c, first, count, ws, params, tokens, labels, S(scale), &scored,
                           token_err.data() + size_t(first) * T,
                           grad_tokens ? grad_tokens + size_t(first) * T * E : nullptr);
  });
  sum_grad_partials(grads);
  double total = 0.0;
  for (int b = 0; b < batch_; ++b)
    for (int t = 0; t < T; ++t)
      if (scored[size_t(t)]) total += token_err[size_t(b) * T + t];
  return scale / 2.0 * total;
}

template <class S>
void BatchRunner<S>::token_errors(const S* params, const S* tokens, const S* labels,
                                  double* sq_err) {
  const int T = seq_len_, E = model_.config().token_dim(), D = model_.config().data_dim;
  for_each_chunk([&](int, int first, int count, Workspace<S>& ws) {
    model_.forward<S>(params, tokens + size_t(first) * T * E, count, ws);
    squared_error<S>(ws, count, labels + size_t(first) * T * D, sq_err + size_t(first) * T);
  });
}

template <class S>
void BatchRunner<S>::forward_chunks(const S* params, const S* tokens, const ChunkVisitor& visit) {
  const int T = seq_len_, E = model_.config().token_dim();
  for_each_chunk([&](int, int first, int count, Workspace<S>& ws) {
    model_.forward<S>(params, tokens + size_t(first) * T * E, count, ws);
    visit(first, count, ws);
  });
}

template <class S>
std::pair<double, double> BatchRunner<S>::thread_seconds() const {
  std::pair<double, double> sum{0.0, 0.0};
  for (const Workspace<S>& ws : workspaces_) {
    sum.first += ws.forward_seconds;
    sum.second += ws.backward_seconds;
  }
  return sum;
}

template class BatchRunner<float>;
template class BatchRunner<double>;

}  // namespace mesalab
