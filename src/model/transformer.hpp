#pragma once
// The paper's attention-only transformer on constructed tokens. Per layer l:
//   q = x Wq, k = x Wk, v = x Wv            x: (B,T,E), W*: (E, H*K)
//   y = x + Mixer_l(q, k, v) Wo              Wo: (H*K, E)
//   x <- clip(y, -c, c)                      c = clip_act (no clipping if c <= 0)
// Prediction: the first D channels of the final residual stream.
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
  // Debugging aid, not part of the model: check every layer's output and gradient for
  // NaN/inf and name the first one found (costs one pass over the activations).
  bool detect_anomaly = false;

  int layers() const { return int(mixers.size()); }
  void validate() const;  // throws Error naming the offending field
};

// Activations of one chunk of at most `max_batch` sequences, allocated once.
template <class S>
struct Workspace {
  int max_batch = 0;
  int seq_len = 0;
  std::vector<S> x;      // (L+1) x (N, E): residual stream entering layer l; x[L] = output
  std::vector<S> y;      // L x (N, E): pre-clip residual sums
  std::vector<S> qkv;    // L x 3 x (N, H*K)
  std::vector<S> mixed;  // L x (N, H*K): mixer outputs
  std::vector<S> cache;  // per-layer mixer caches
  std::vector<size_t> cache_offset;
  std::vector<S> dx, dmixed, dqkv, scratch;
  std::vector<S> lambdas, d_lambdas;  // (H): effective mesa lambdas of the current layer
};

struct LayerOffsets {
  size_t q = 0, k = 0, v = 0, o = 0, lambdas = 0;
};

class Transformer {
 public:
  explicit Transformer(ModelConfig config);

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.total(); }
  const LayerOffsets& layer(int l) const { return layers_[size_t(l)]; }

  // Every weight ~ N(0, init_std^2) (tensor i drawn from Rng{seed, Init, i});
  // mesa lambdas = mesa_lambda_init (through the inverse softplus if so parametrised).
  template <class S>
  void init_params(S* params, uint64_t seed) const;

  template <class S>
  Workspace<S> make_workspace(int max_batch, int seq_len) const;

  // Forward over `batch` sequences (batch <= ws.max_batch); tokens (B,T,E), labels (B,T,D).
  // Returns sum over (b, t, d) of (pred - label)^2. If sq_err_per_token is given, writes
  // the per-(b,t) sums there. If grads is given, runs the backward pass and accumulates
  // d/dparams of  grad_scale * sum (pred - label)^2 / 2  into grads (also grad_tokens if
  // given, overwritten, (B,T,E)).
  template <class S>
  double run(const S* params, const S* tokens, const S* labels, int batch, Workspace<S>& ws,
             S* grads = nullptr, S grad_scale = S(0), double* sq_err_per_token = nullptr,
             S* grad_tokens = nullptr) const;

 private:
  AttentionShape shape(int batch, int seq_len) const;
  template <class S>
  const S* mesa_lambdas(const S* params, const LayerOffsets& o, MixerKind kind,
                        Workspace<S>& ws) const;
  ModelConfig config_;
  ParamLayout layout_;
  std::vector<LayerOffsets> layers_;
};

}  // namespace mesalab
