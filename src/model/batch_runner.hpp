#pragma once
// Runs a Transformer over a whole batch, in parallel and deterministically.
// The batch is cut into fixed chunks of kChunkSequences sequences (independent of the
// thread count); each chunk runs forward+backward on a thread-local workspace and writes
// its own gradient partial; partials and losses are then summed in chunk order. Hence the
// result is bit-identical for any number of OpenMP threads.
#include <functional>
#include <utility>
#include <vector>

#include "model/transformer.hpp"

namespace mesalab {

inline constexpr int kChunkSequences = 8;

template <class S>
class BatchRunner {
 public:
  // forward_only: workspaces for token_errors / forward_chunks alone (Transformer::
  // make_workspace's forward_only: no gradient buffers, 2 of T mesa inverse states);
  // loss_and_grad on such a runner is an Error.
  BatchRunner(const Transformer& model, int batch, int seq_len, bool forward_only = false);

  int batch() const { return batch_; }
  // Thread-seconds spent in the model's forward and backward parts by all chunks so far.
  std::pair<double, double> thread_seconds() const;
  int seq_len() const { return seq_len_; }

  // loss = sum_(b,t,d) (pred - label)^2 / (2 B T); grads (overwritten) = d loss / d params.
  // tokens (B,T,E), labels (B,T,D).
  double loss_and_grad(const S* params, const S* tokens, const S* labels, S* grads);

  // A loss over some positions only, the same for every sequence (in-context learning scores
  // the x positions): loss = scale / 2 * sum_{b, t: scored[t]} sum_d (pred - label)^2.
  // grads (overwritten) = d loss / d params; grad_tokens (overwritten, (B,T,E), may be null)
  // = d loss / d tokens. scored has T entries.
  double scored_loss_and_grad(const S* params, const S* tokens, const S* labels,
                              const std::vector<char>& scored, double scale, S* grads,
                              S* grad_tokens);

  // Forward only: squared error summed over channels, per token, written to (B,T).
  void token_errors(const S* params, const S* tokens, const S* labels, double* sq_err);

  // Forward only, for analysis tools: after each chunk's forward, visit(first, count, ws)
  // sees that chunk's activations (ws.layer(l), ws.prediction(): rows of `count` sequences).
  // Chunks run in parallel, so visitors must write disjoint outputs.
  using ChunkVisitor = std::function<void(int first, int count, const Workspace<S>& ws)>;
  void forward_chunks(const S* params, const S* tokens, const ChunkVisitor& visit);

 private:
  int num_chunks() const { return (batch_ + kChunkSequences - 1) / kChunkSequences; }
  template <class ChunkFn>
  void for_each_chunk(ChunkFn&& fn);
  void sum_grad_partials(S* grads);
  double chunk_forward_backward(int c, int first, int count, Workspace<S>& ws, const S* params,
                                const S* tokens, const S* labels, S scale,
                                const std::vector<char>* scored, double* token_err, S* grad_tokens);

  const Transformer& model_;
  int batch_, seq_len_;
  bool forward_only_;
  std::vector<Workspace<S>> workspaces_;  // one per thread
  std::vector<S> grad_partials_;          // num_chunks x num_params
  std::vector<double> loss_partials_;     // num_chunks
};

}  // namespace mesalab
