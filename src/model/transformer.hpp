#pragma once
// The paper's transformer (official FullTransformerModel). By default the attention-only
// model on constructed tokens; LayerNorm, MLP, input/output embedding and positional codes
// are switched on by ModelConfig. Per block l, with a = LN1(x) (a = x without LayerNorm):
//   q = a Wq, k = a Wk, v = a Wv            x: (B,T,E), W*: (E, H*K)
//   m = x + Mixer_l(q, k, v) Wo              Wo: (H*K, E)
//   y = m + MLP(LN2(m))                      (y = m without MLP)
//   x <- clip(y, -c, c)                      c = clip_act (no clipping if c <= 0)
// Input:  x_0 = tokens (E wide), or tokens Win (+ PE) with an embedding.
// With positional_codes_qk the first block's queries and keys also see the codes P (T, E):
//   q = [a, P] [Wq; Wq_pos] = a Wq + P Wq_pos,  k = a Wk + P Wk_pos  (official use_pe_kq).
// Output: the first D channels of the final residual stream, or x_L Wout with an embedding.
// The model works on one chunk of sequences at a time (see BatchRunner for the batch).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/param_layout.hpp"
#include "model/attention_shape.hpp"
#include "model/mesa_attention.hpp"

namespace mesalab {

enum class MixerKind { Linear, Softmax, Mesa };
std::string_view mixer_name(MixerKind kind);
MixerKind parse_mixer(std::string_view name);  // "lsa"|"linear", "softmax", "mesa"

struct ModelConfig {
  int data_dim = 10;
  int embed_dim = 40;
  int heads = 4;
  int key_size = 20;
  std::vector<MixerKind> mixers{MixerKind::Linear, MixerKind::Linear};  // one per layer
  double clip_act = 1.5;
  double init_std = 2e-4;
  double mesa_lambda_init = 1.0;
  // How a mesa layer's lambda is stored: the raw value (as the official code; must stay
  // > 0, checked at run time) or softplus-parametrised, lambda = log(1 + exp(theta)),
  // which keeps it positive by construction (tensor "layers.<l>.lambdas_softplus").
  bool mesa_lambda_softplus = false;
  MesaOptions mesa;
  // Full-transformer parts (all off in the paper's main models; no biases anywhere, as
  // the official use_bias = False).
  bool layer_norm = false;        // pre-LN blocks, Flax LayerNorm (eps 1e-6, scale, bias)
  bool mlp = false;               // x += W2 gelu(W1 LN2(x)) after the attention
  int mlp_hidden = 80;            // F: W1 (E, F), W2 (F, E)
  int input_dim = 0;              // > 0: embed tokens (B,T,input_dim) by Win, read out by Wout
  bool positional_codes = false;  // add fixed sinusoidal codes to the embedded tokens
  // Concatenate the codes to the first block's query and key inputs (official use_pe_kq,
  // which the official hybrid first block uses instead of adding them): tensors
  // layers.0.q_pos and layers.0.k_pos (E, H*K).
  bool positional_codes_qk = false;
  // Debugging aid, not part of the model: check every layer's output and gradient for
  // NaN/inf and name the first one found (costs one pass over the activations).
  bool detect_anomaly = false;
  // Engine choice, not part of the model: mesa layers recompute their inverse states in the
  // backward instead of keeping them in the cache (bit-identical; config
  // train.mesa_recompute_inverses).
  bool mesa_recompute_inverses = false;

  int layers() const { return int(mixers.size()); }
  bool embedding() const { return input_dim > 0; }
  int token_dim() const { return embedding() ? input_dim : embed_dim; }
  bool uses_positions() const { return positional_codes || positional_codes_qk; }
  void validate() const;  // throws Error naming the offending field
};

// Named views of one layer's activations in a Workspace, valid after Transformer::forward:
// rows (b, t) of the chunk's sequences, E = embed_dim wide for the residual stream and
// H*K wide for q, k, v and the mixer output. Parts that are switched off alias the buffer
// they stand for (attn_in = input without LayerNorm; mid = pre_clip without an MLP;
// mlp_in = mid without LayerNorm).
template <class S>
struct LayerView {
  S* input;     // x_l: the residual stream entering the layer
  S* attn_in;   // a = LN1(x_l)
  S* q;         // a Wq
  S* k;         // a Wk
  S* v;         // a Wv
  S* mixed;     // Mixer(q, k, v)
  S* mid;       // m = x_l + mixed Wo
  S* mlp_in;    // LN2(m)
  S* pre_clip;  // y = m + MLP(LN2(m))
  S* output;    // x_{l+1} = clip(y)
  S* cache;     // the mixer's cache (layout private to the mixer)
};

// The model's prediction for a chunk, valid after forward: rows (b, t) with `stride` values
// each, of which the first D are the prediction.
template <class S>
struct PredictionView {
  const S* data;
  int stride;
};

// Activations of one chunk of at most `max_batch` sequences, allocated once. Buffers of
// parts that are switched off stay empty. Read them through layer() and prediction().
template <class S>
struct Workspace {
  int max_batch = 0;
  int seq_len = 0;
  // Made for forward passes only: no gradient buffers, and mesa layers keep two of their T
  // inverse states (mesa_attention_forward's keep_inverses = false).
  bool forward_only = false;
  int layers = 0, embed_dim = 0, data_dim = 0;
  int forward_batch = 0;       // sequences of the last forward (what a backward may follow)
  size_t stream_block = 0;     // max_batch * T * E: one layer's residual-stream block
  size_t proj_block = 0;       // max_batch * T * H*K: one q, k, v or mixer-output block
  size_t norm_block = 0;       // one LayerNorm cache
  size_t mlp_block = 0;        // one MLP cache
  std::vector<S> x;            // (L+1) x (N, E): residual stream entering layer l; x[L] = output
  std::vector<S> y;            // L x (N, E): pre-clip residual sums
  std::vector<S> attn_in;      // L x (N, E): LN1(x) (with LayerNorm)
  std::vector<S> mid;          // L x (N, E): m = x + attention (with MLP)
  std::vector<S> mlp_in;       // L x (N, E): LN2(m) (with MLP and LayerNorm)
  std::vector<S> norm_cache;   // L x 2 x (2N): mean and 1/std of LN1, LN2
  std::vector<S> mlp_cache;    // L x (2 N F)
  std::vector<S> positions;    // (T, E): sinusoidal codes
  std::vector<S> position_qk;  // 2 x (T, H*K): P Wq_pos, P Wk_pos (positional_codes_qk)
  std::vector<S> out;          // (N, D): prediction (with embedding)
  std::vector<S> d_branch;     // (N, E): gradient at a LayerNorm output
  std::vector<S> qkv;          // L x 3 x (N, H*K)
  std::vector<S> mixed;        // L x (N, H*K): mixer outputs
  std::vector<S> cache;        // per-layer mixer caches
  std::vector<size_t> cache_offset;
  std::vector<S> d_pred;  // (N, D): d loss / d prediction, for backward's callers
  std::vector<S> dx, dmixed, dqkv, scratch;
  std::vector<S> lambdas, d_lambdas;  // (H): effective mesa lambdas of the current layer
  // Seconds this workspace's thread spent in forward and backward, summed over calls (where
  // a training step's time goes; see BatchRunner::thread_seconds).
  double forward_seconds = 0.0, backward_seconds = 0.0;

  LayerView<S> layer(int l);
  LayerView<const S> layer(int l) const;
  PredictionView<S> prediction() const;
  S* norm_cache_of(int l, int which) { return norm_cache.data() + (2 * l + which) * norm_block; }
};

// Element counts of a Workspace's buffers, computed without allocating (make_workspace
// allocates exactly these; memory estimates read them).
struct WorkspaceSizes {
  size_t x = 0, y = 0, attn_in = 0, mid = 0, mlp_in = 0, norm_cache = 0, mlp_cache = 0;
  size_t positions = 0, position_qk = 0, out = 0, d_branch = 0, qkv = 0, mixed = 0, cache = 0;
  size_t d_pred = 0, dx = 0, dmixed = 0, dqkv = 0, scratch = 0, lambdas = 0;
  size_t total() const {
    return x + y + attn_in + mid + mlp_in + norm_cache + mlp_cache + positions + position_qk + out +
           d_branch + qkv + mixed + cache + d_pred + dx + dmixed + dqkv + scratch + 2 * lambdas;
  }
};

// The squared error of the last forward on ws against labels (B,T,D): returns the sum over
// (b, t, d) of (pred - label)^2 and, if given, writes the per-(b,t) sums.
template <class S>
double squared_error(const Workspace<S>& ws, int batch, const S* labels,
                     double* sq_err_per_token = nullptr);

// d_pred = scale * (pred - label), (B,T,D): the gradient of scale * sum (pred - label)^2 / 2.
template <class S>
void squared_error_gradient(const Workspace<S>& ws, int batch, const S* labels, S scale, S* d_pred);

struct LayerOffsets {
  size_t q = 0, k = 0, v = 0, o = 0, lambdas = 0;
  size_t q_pos = 0, k_pos = 0;  // layer 0 with positional_codes_qk
  size_t ln1_scale = 0, ln1_bias = 0, ln2_scale = 0, ln2_bias = 0, mlp_w1 = 0, mlp_w2 = 0;
};

class Transformer {
 public:
  explicit Transformer(ModelConfig config);

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.total(); }
  const LayerOffsets& layer(int l) const { return layers_[size_t(l)]; }

  // Every weight ~ N(0, init_std^2) (tensor i drawn from Rng{seed, Init, i});
  // mesa lambdas = mesa_lambda_init (through the inverse softplus if so parametrised);
  // LayerNorm scales 1, biases 0.
  template <class S>
  void init_params(S* params, uint64_t seed) const;

  // forward_only: a workspace for forward() alone (evaluation, analyses): no gradient
  // buffers, and 2 instead of T inverse states per mesa head; its forward is bit-identical.
  WorkspaceSizes workspace_sizes(int max_batch, int seq_len, bool forward_only = false) const;
  template <class S>
  Workspace<S> make_workspace(int max_batch, int seq_len, bool forward_only = false) const;

  // Forward over `batch` sequences (batch <= ws.max_batch), tokens (B,T,token_dim()): fills
  // ws (ws.layer(l), ws.prediction()).
  template <class S>
  void forward(const S* params, const S* tokens, int batch, Workspace<S>& ws) const;

  // Backward of the last forward on ws, given d_pred = d loss / d prediction (B,T,D):
  // accumulates d loss / d params into grads, and overwrites grad_tokens (B,T,token_dim())
  // if given. Needs a workspace made without forward_only.
  template <class S>
  void backward(const S* params, const S* tokens, int batch, Workspace<S>& ws, const S* d_pred,
                S* grads, S* grad_tokens = nullptr) const;

  // The same backward started one step later, from d_stream = d loss / d x_L, the gradient
  // at the final residual stream (B,T,E) instead of at the prediction: the gradient of any
  // function of the last block's output, e.g. of one activation x_L[b][t][l] (analysis/
  // sensitivity.hpp). embed.out gets no gradient; otherwise as backward.
  template <class S>
  void backward_from_stream(const S* params, const S* tokens, int batch, Workspace<S>& ws,
                            const S* d_stream, S* grads, S* grad_tokens = nullptr) const;

 private:
  template <class S>
  void backward_blocks(const S* params, const S* tokens, int batch, Workspace<S>& ws, S* grads,
                       S* grad_tokens) const;
  AttentionShape shape(int batch, int seq_len) const;
  template <class S>
  void add_position_qk(const S* params, const LayerOffsets& o, int batch, Workspace<S>& ws, S* q,
                       S* k) const;
  template <class S>
  void position_qk_backward(const LayerOffsets& o, int batch, Workspace<S>& ws, const S* dq,
                            const S* dk, S* grads) const;
  template <class S>
  const S* mesa_lambdas(const S* params, const LayerOffsets& o, MixerKind kind,
                        Workspace<S>& ws) const;
  ModelConfig config_;
  ParamLayout layout_;
  std::vector<LayerOffsets> layers_;
  size_t embed_in_ = 0, embed_out_ = 0;
};

}  // namespace mesalab
