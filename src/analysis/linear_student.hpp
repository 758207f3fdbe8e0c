#pragma once
// The student of a linearization (SPEC_EXPERIMENTS 6): one linear self-attention layer on
// its own, fitted to map a layer's attention input a (B,T,E) to that layer's attention
// output before the residual:
//   q = a Wq (+ P Wq_pos),  k = a Wk (+ P Wk_pos),  v = a Wv      W*: (E, H*K), P: (T, E)
//   y = LSA(q, k, v) Wo                                           Wo: (H*K, E)
// LSA is model/linear_attention.hpp (causal, diagonal included, no scaling, no bias). The
// positional part is the official use_pe_kq student of the first layer of a model with
// positional_codes_qk (P = the model's sinusoidal codes). The tensors carry the names of a
// Transformer layer's ("q", "k", "q_pos", "k_pos", "v", "o"), so splicing the student into a
// layer copies them by name.
#include <cstdint>
#include <vector>

#include "core/param_layout.hpp"
#include "model/transformer.hpp"

namespace mesalab {

struct StudentConfig {
  int embed_dim = 0;       // E
  int heads = 0;           // H
  int key_size = 0;        // K
  bool positions = false;  // the P Wq_pos, P Wk_pos part
  void validate() const;   // throws Error naming the field
};

// Offsets of the student's tensors in its parameter buffer (q_pos, k_pos with positions).
struct StudentOffsets {
  size_t q = 0, k = 0, q_pos = 0, k_pos = 0, v = 0, o = 0;
};

// The student shaped like layer `layer` of `model` (positions iff layer 0 of a model with
// positional_codes_qk).
StudentConfig student_config_of(const ModelConfig& model, int layer);

class LinearStudent {
 public:
  explicit LinearStudent(StudentConfig config);
  const StudentConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.total(); }
  const StudentOffsets& offsets() const { return offsets_; }

  // Every weight ~ N(0, std^2), tensor j drawn from Rng{seed, Linearization, stream, j}:
  // `stream` tells students of one seed apart (a layer index, say).
  template <class S>
  void init_params(S* params, double std, uint64_t seed, uint64_t stream) const;

  // Copies the student's tensors into layers.<layer>.* of a model's parameters (write), or
  // a layer's tensors into the student (read). Throws Error if the model's layer has other
  // shapes or lacks a tensor.
  template <class S>
  void write_into(const Transformer& model, int layer, const S* student, S* model_params) const;
  template <class S>
  void read_from(const Transformer& model, int layer, const S* model_params, S* student) const;

 private:
  StudentConfig config_;
  ParamLayout layout_;
  StudentOffsets offsets_;
};

// The student's loss and gradient on a batch, run like BatchRunner: fixed chunks of
// kChunkSequences sequences in parallel, each with its own gradient partial, summed in chunk
// order in double, so the result is bit-identical for any thread count. Buffers are
// allocated once, at construction.
template <class S>
class StudentRunner {
 public:
  StudentRunner(const LinearStudent& student, int batch, int seq_len);
  int batch() const { return batch_; }
  int seq_len() const { return seq_len_; }

  // inputs, targets: (B,T,E). Returns loss = sum_(b,t,e) (y - target)^2 / (2 B T), and
  // overwrites grads = d loss / d params when grads is not null.
  double loss_and_grad(const S* params, const S* inputs, const S* targets, S* grads);

  // The same in parts, for a caller that runs its own parallel loop over the chunks
  // (linearize fuses the frozen model's forward and several students into one loop):
  // prepare(params) once per batch, then chunk() for each chunk of at most kChunkSequences
  // sequences, on the calling thread's buffers. inputs, targets: the chunk's (count,T,E)
  // rows. Returns the chunk's sum (y - target)^2 and, if partial is not null, overwrites it
  // with the chunk's part of d loss / d params; loss and gradient are the sums over the
  // chunks (in chunk order, for determinism), the loss divided by 2 B T with B = batch().
  void prepare(const S* params);
  double chunk(const S* params, const S* inputs, const S* targets, int count, S* partial);

 private:
  struct Buffers {  // one thread's, for kChunkSequences sequences
    std::vector<S> q, k, v, mixed, y, cache, dq, dk, dv, dmixed, scratch;
  };

  const LinearStudent& student_;
  int batch_, seq_len_;
  std::vector<S> positions_;      // (T, E): P
  std::vector<S> position_qk_;    // 2 x (T, H*K): P Wq_pos, P Wk_pos of the current params
  std::vector<Buffers> buffers_;  // one per thread
  std::vector<S> grad_partials_;  // chunks x num_params
  std::vector<double> loss_partials_;
};

}  // namespace mesalab
