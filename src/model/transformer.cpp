#include "model/transformer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "model/layer_norm.hpp"
#include "model/linear_attention.hpp"
#include "model/mlp.hpp"
#include "model/positional_codes.hpp"
#include "model/softmax_attention.hpp"

namespace mesalab {

std::string_view mixer_name(MixerKind kind) {
  switch (kind) {
    case MixerKind::Linear:
      return "lsa";
    case MixerKind::Softmax:
      return "softmax";
    case MixerKind::Mesa:
      return "mesa";
  }
  return "?";
}

MixerKind parse_mixer(std::string_view name) {
  if (name == "lsa" || name == "linear") return MixerKind::Linear;
  if (name == "softmax") return MixerKind::Softmax;
  if (name == "mesa") return MixerKind::Mesa;
  fail("unknown layer kind '{}' (allowed: lsa, softmax, mesa)", name);
}

void ModelConfig::validate() const {
  if (data_dim < 1) fail("model: data_dim must be >= 1 (got {})", data_dim);
  if (!embedding() && embed_dim < data_dim)
    fail(
        "model: embed_dim ({}) must be >= data_dim ({}) because the prediction is read "
        "from the first data_dim channels",
        embed_dim, data_dim);
  if (embed_dim < 1) fail("model.embed_dim must be >= 1 (got {})", embed_dim);
  if (input_dim < 0) fail("model: input_dim must be >= 0 (got {})", input_dim);
  if (mlp && mlp_hidden < 1) fail("model.mlp_hidden must be >= 1 (got {})", mlp_hidden);
  if (heads < 1) fail("model.heads must be >= 1 (got {})", heads);
  if (key_size < 1) fail("model.key_size must be >= 1 (got {})", key_size);
  if (mixers.empty()) fail("model.layers must be >= 1");
  if (!(clip_act >= 0)) fail("model.clip_act must be >= 0 (0 disables clipping)");
  if (!(init_std >= 0)) fail("model.init_std must be >= 0");
  if (!(mesa_lambda_init > 0)) fail("model.mesa_lambda_init must be > 0");
}

Transformer::Transformer(ModelConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t E = config_.embed_dim, HK = int64_t(config_.heads) * config_.key_size;
  if (config_.embedding()) embed_in_ = layout_.add("embed.in", {config_.input_dim, E});
  for (int l = 0; l < config_.layers(); ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerOffsets o;
    if (config_.layer_norm) {
      o.ln1_scale = layout_.add(p + "ln1.scale", {E});
      o.ln1_bias = layout_.add(p + "ln1.bias", {E});
    }
    o.q = layout_.add(p + "q", {E, HK});
    o.k = layout_.add(p + "k", {E, HK});
    if (l == 0 && config_.positional_codes_qk) {
      o.q_pos = layout_.add(p + "q_pos", {E, HK});
      o.k_pos = layout_.add(p + "k_pos", {E, HK});
    }
    o.v = layout_.add(p + "v", {E, HK});
    o.o = layout_.add(p + "o", {HK, E});
    if (config_.mixers[size_t(l)] == MixerKind::Mesa)
      o.lambdas = layout_.add(p + (config_.mesa_lambda_softplus ? "lambdas_softplus" : "lambdas"),
                              {config_.heads});
    if (config_.mlp) {
      if (config_.layer_norm) {
        o.ln2_scale = layout_.add(p + "ln2.scale", {E});
        o.ln2_bias = layout_.add(p + "ln2.bias", {E});
      }
      o.mlp_w1 = layout_.add(p + "mlp.w1", {E, config_.mlp_hidden});
      o.mlp_w2 = layout_.add(p + "mlp.w2", {config_.mlp_hidden, E});
    }
    layers_.push_back(o);
  }
  if (config_.embedding()) embed_out_ = layout_.add("embed.out", {E, config_.data_dim});
}

AttentionShape Transformer::shape(int batch, int seq_len) const {
  return AttentionShape{batch, seq_len, config_.heads, config_.key_size};
}

template <class S>
void Transformer::init_params(S* params, uint64_t seed) const {
  const auto& specs = layout_.specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    const ParamSpec& spec = specs[i];
    S* p = params + spec.offset;
    const bool is_lambda =
        spec.name.ends_with(".lambdas") || spec.name.ends_with(".lambdas_softplus");
    // softplus^{-1}(x) = log(exp(x) - 1) = x + log(1 - exp(-x)).
    const double lambda0 =
        config_.mesa_lambda_softplus
            ? config_.mesa_lambda_init + std::log(-std::expm1(-config_.mesa_lambda_init))
            : config_.mesa_lambda_init;
    if (spec.name.ends_with(".scale") || spec.name.ends_with(".bias")) {
      std::fill(p, p + spec.size, S(spec.name.ends_with(".scale") ? 1 : 0));
      continue;
    }
    Rng rng{seed, uint64_t(RngPurpose::Init), i};
    for (size_t j = 0; j < spec.size; ++j)
      p[j] = is_lambda ? S(lambda0) : S(config_.init_std * rng.normal());
  }
}

static size_t mixer_cache_size(MixerKind kind, const AttentionShape& s, bool keep_inverses) {
  switch (kind) {
    case MixerKind::Linear:
      return linear_attention_cache_size(s);
    case MixerKind::Softmax:
      return softmax_attention_cache_size(s);
    case MixerKind::Mesa:
      return mesa_attention_cache_size(s, /*keep_inverses=*/keep_inverses);
  }
  return 0;
}

WorkspaceSizes Transformer::workspace_sizes(int max_batch, int seq_len, bool forward_only) const {
  if (max_batch < 1 || seq_len < 1) fail("workspace needs batch >= 1 and seq_len >= 1");
  const size_t L = size_t(config_.layers());
  const size_t N = size_t(max_batch) * seq_len, E = config_.embed_dim;
  const size_t HK = size_t(config_.heads) * config_.key_size;
  const AttentionShape s = shape(max_batch, seq_len);
  const ModelConfig& c = config_;
  WorkspaceSizes w;
  w.x = (L + 1) * N * E;
  w.y = L * N * E;
  w.qkv = L * 3 * N * HK;
  w.mixed = L * N * HK;
  const bool keep_inverses = !forward_only && !config_.mesa_recompute_inverses;
  for (MixerKind kind : config_.mixers) w.cache += mixer_cache_size(kind, s, keep_inverses);
  if (c.layer_norm) w.attn_in = L * N * E;
  if (c.mlp) {
    w.mid = L * N * E;
    if (c.layer_norm) w.mlp_in = L * N * E;
    w.mlp_cache = L * mlp_cache_size(N, c.mlp_hidden);
  }
  if (c.layer_norm) w.norm_cache = L * 2 * layer_norm_cache_size(N);
  if (c.layer_norm || c.mlp || c.embedding()) w.d_branch = N * E;
  if (c.embedding()) w.out = N * size_t(c.data_dim);
  if (c.uses_positions()) w.positions = size_t(seq_len) * E;
  if (c.positional_codes_qk) w.position_qk = 2 * size_t(seq_len) * HK;
  w.d_pred = N * size_t(c.data_dim);
  w.dx = N * E;
  w.dmixed = N * HK;
  w.dqkv = 3 * N * HK;
  w.scratch = std::max({size_t(seq_len) * seq_len, mesa_attention_scratch_size(s),
                        c.mlp ? N * size_t(c.mlp_hidden) : size_t(0)});
  w.lambdas = size_t(config_.heads);
  if (forward_only) w.d_branch = w.d_pred = w.dx = w.dmixed = w.dqkv = w.scratch = 0;
  return w;
}

template <class S>
Workspace<S> Transformer::make_workspace(int max_batch, int seq_len, bool forward_only) const {
  const WorkspaceSizes w = workspace_sizes(max_batch, seq_len, forward_only);
  const AttentionShape s = shape(max_batch, seq_len);
  Workspace<S> ws;
  ws.max_batch = max_batch;
  ws.seq_len = seq_len;
  ws.forward_only = forward_only;
  ws.layers = config_.layers();
  ws.embed_dim = config_.embed_dim;
  ws.data_dim = config_.data_dim;
  ws.stream_block = size_t(max_batch) * seq_len * config_.embed_dim;
  ws.proj_block = size_t(max_batch) * seq_len * config_.heads * config_.key_size;
  ws.norm_block = layer_norm_cache_size(size_t(max_batch) * seq_len);
  ws.mlp_block = config_.mlp ? mlp_cache_size(size_t(max_batch) * seq_len, config_.mlp_hidden) : 0;
  ws.x.resize(w.x);
  ws.y.resize(w.y);
  ws.qkv.resize(w.qkv);
  ws.mixed.resize(w.mixed);
  size_t cache_total = 0;
  for (MixerKind kind : config_.mixers) {
    ws.cache_offset.push_back(cache_total);
    cache_total += mixer_cache_size(kind, s, !forward_only && !config_.mesa_recompute_inverses);
  }
  ws.cache.resize(w.cache);
  ws.attn_in.resize(w.attn_in);
  ws.mid.resize(w.mid);
  ws.mlp_in.resize(w.mlp_in);
  ws.mlp_cache.resize(w.mlp_cache);
  ws.norm_cache.resize(w.norm_cache);
  ws.d_branch.resize(w.d_branch);
  ws.out.resize(w.out);
  ws.position_qk.resize(w.position_qk);
  if (config_.uses_positions()) {
    std::vector<double> pe(w.positions);
    sinusoidal_positions(seq_len, config_.embed_dim, pe.data());
    ws.positions.assign(pe.begin(), pe.end());
  }
  ws.d_pred.resize(w.d_pred);
  ws.dx.resize(w.dx);
  ws.dmixed.resize(w.dmixed);
  ws.dqkv.resize(w.dqkv);
  ws.scratch.resize(w.scratch);
  ws.lambdas.resize(w.lambdas);
  ws.d_lambdas.resize(w.lambdas);
  return ws;
}

template <class S>
static void mixer_forward(MixerKind kind, const AttentionShape& s, const MesaOptions& mesa,
                          const S* q, const S* k, const S* v, const S* lambdas, S* cache, S* out,
                          bool keep_inverses) {
  switch (kind) {
    case MixerKind::Linear:
      return linear_attention_forward(s, q, k, v, cache, out);
    case MixerKind::Softmax:
      return softmax_attention_forward(s, q, k, v, cache, out);
    case MixerKind::Mesa:
      return mesa_attention_forward(s, mesa, q, k, v, lambdas, cache, out, keep_inverses);
  }
}

template <class S>
static void mixer_backward(MixerKind kind, const AttentionShape& s, const MesaOptions& mesa,
                           const S* q, const S* k, const S* v, const S* lambdas, const S* cache,
                           const S* d_out, S* dq, S* dk, S* dv, S* d_lambdas, S* scratch,
                           bool inverses_in_cache) {
  switch (kind) {
    case MixerKind::Linear:
      return linear_attention_backward(s, q, k, v, cache, d_out, dq, dk, dv, scratch);
    case MixerKind::Softmax:
      return softmax_attention_backward(s, q, k, v, cache, d_out, dq, dk, dv, scratch);
    case MixerKind::Mesa:
      return mesa_attention_backward(s, mesa, q, k, v, lambdas, cache, d_out, dq, dk, dv, d_lambdas,
                                     scratch, inverses_in_cache);
  }
}

// The lambdas a mesa mixer sees: the parameters themselves, or softplus(theta) computed into
// the workspace. Unused (nullptr) for other mixers.
template <class S>
const S* Transformer::mesa_lambdas(const S* params, const LayerOffsets& o, MixerKind kind,
                                   Workspace<S>& ws) const {
  if (kind != MixerKind::Mesa) return nullptr;
  if (!config_.mesa_lambda_softplus) return params + o.lambdas;
  for (int h = 0; h < config_.heads; ++h) {
    const S theta = params[o.lambdas + h];
    ws.lambdas[h] = theta > S(30) ? theta : std::log1p(std::exp(theta));
  }
  return ws.lambdas.data();
}

// The first block's positional part, with P (T, E) the codes and q_b the queries of
// sequence b:  q_b += P Wq_pos,  k_b += P Wk_pos.
template <class S>
void Transformer::add_position_qk(const S* params, const LayerOffsets& o, int batch,
                                  Workspace<S>& ws, S* q, S* k) const {
  const int T = ws.seq_len, E = config_.embed_dim, HK = config_.heads * config_.key_size;
  const size_t TH = size_t(T) * HK;
  auto P = mat(static_cast<const S*>(ws.positions.data()), T, E);
  S* pq = ws.position_qk.data();
  mat(pq, T, HK).noalias() = P * mat(params + o.q_pos, E, HK);
  mat(pq + TH, T, HK).noalias() = P * mat(params + o.k_pos, E, HK);
  for (int b = 0; b < batch; ++b) {
    mat(q + b * TH, T, HK) += mat(static_cast<const S*>(pq), T, HK);
    mat(k + b * TH, T, HK) += mat(static_cast<const S*>(pq + TH), T, HK);
  }
}

// dWq_pos += P^T sum_b dq_b,  dWk_pos += P^T sum_b dk_b (the codes get no gradient).
template <class S>
void Transformer::position_qk_backward(const LayerOffsets& o, int batch, Workspace<S>& ws,
                                       const S* dq, const S* dk, S* grads) const {
  const int T = ws.seq_len, E = config_.embed_dim, HK = config_.heads * config_.key_size;
  const size_t TH = size_t(T) * HK;
  auto P = mat(static_cast<const S*>(ws.positions.data()), T, E);
  const S* d_proj[2] = {dq, dk};
  const size_t w_off[2] = {o.q_pos, o.k_pos};
  for (int j = 0; j < 2; ++j) {
    auto sum = mat(ws.position_qk.data(), T, HK);
    sum = mat(d_proj[j], T, HK);
    for (int b = 1; b < batch; ++b) sum += mat(d_proj[j] + b * TH, T, HK);
    mat(grads + w_off[j], E, HK).noalias() += P.transpose() * sum;
  }
}

template <class S>
static LayerView<S> layer_view(Workspace<S>& ws, int l) {
  LayerView<S> v;
  v.input = ws.x.data() + l * ws.stream_block;
  v.output = v.input + ws.stream_block;
  v.pre_clip = ws.y.data() + l * ws.stream_block;
  v.attn_in = ws.attn_in.empty() ? v.input : ws.attn_in.data() + l * ws.stream_block;
  v.mid = ws.mid.empty() ? v.pre_clip : ws.mid.data() + l * ws.stream_block;
  v.mlp_in = ws.mlp_in.empty() ? v.mid : ws.mlp_in.data() + l * ws.stream_block;
  v.q = ws.qkv.data() + 3 * l * ws.proj_block;
  v.k = v.q + ws.proj_block;
  v.v = v.k + ws.proj_block;
  v.mixed = ws.mixed.data() + l * ws.proj_block;
  v.cache = ws.cache.data() + ws.cache_offset[size_t(l)];
  return v;
}

template <class S>
LayerView<S> Workspace<S>::layer(int l) {
  if (l < 0 || l >= layers) fail("layer {} out of range (the model has {} layers)", l, layers);
  return layer_view(*this, l);
}

template <class S>
LayerView<const S> Workspace<S>::layer(int l) const {
  const LayerView<S> v = const_cast<Workspace<S>*>(this)->layer(l);
  return {v.input, v.attn_in, v.q,        v.k,      v.v,    v.mixed,
          v.mid,   v.mlp_in,  v.pre_clip, v.output, v.cache};
}

template <class S>
PredictionView<S> Workspace<S>::prediction() const {
  if (!out.empty()) return {out.data(), data_dim};
  return {x.data() + layers * stream_block, embed_dim};
}

template <class S>
double squared_error(const Workspace<S>& ws, int batch, const S* labels, double* sq_err_per_token) {
  const PredictionView<S> pred = ws.prediction();
  const size_t N = size_t(batch) * ws.seq_len;
  const int D = ws.data_dim;
  double total = 0.0;
  for (size_t n = 0; n < N; ++n) {
    double token_err = 0.0;
    for (int d = 0; d < D; ++d) {
      const S diff = pred.data[n * pred.stride + d] - labels[n * D + d];
      token_err += double(diff) * double(diff);
    }
    if (sq_err_per_token) sq_err_per_token[n] = token_err;
    total += token_err;
  }
  return total;
}

template <class S>
void squared_error_gradient(const Workspace<S>& ws, int batch, const S* labels, S scale,
                            S* d_pred) {
  const PredictionView<S> pred = ws.prediction();
  const size_t N = size_t(batch) * ws.seq_len;
  const int D = ws.data_dim;
  for (size_t n = 0; n < N; ++n)
    for (int d = 0; d < D; ++d)
      d_pred[n * D + d] = scale * (pred.data[n * pred.stride + d] - labels[n * D + d]);
}

static double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// --detect-anomaly: every layer's outputs (forward) and gradients (backward) must be finite.
template <class S>
static void check_finite(const ModelConfig& c, const S* values, size_t rows, int seq_len,
                         size_t width, int l, const char* tensor) {
  if (!c.detect_anomaly) return;
  const size_t n = rows * width, i = first_non_finite(values, n);
  if (i != n)
    fail_runtime(
        "layer {} ({}): non-finite value in {} (sequence {} of the chunk, token {}, channel {})", l,
        mixer_name(c.mixers[size_t(l)]), tensor, i / width / seq_len, (i / width) % seq_len,
        i % width);
}

// Per block l, with a = LN1(x) (or x):  q, k, v = a Wq, a Wk, a Wv;  m = x + Mixer(q,k,v) Wo;
// y = m + MLP(LN2(m)) (or m);  x_{l+1} = clip(y).
template <class S>
void Transformer::forward(const S* params, const S* tokens, int batch, Workspace<S>& ws) const {
  const auto started = std::chrono::steady_clock::now();
  ws.forward_batch = 0;  // until this forward completes, no backward may follow
  if (batch < 1 || batch > ws.max_batch)
    fail("chunk of {} sequences does not fit the workspace", batch);
  const ModelConfig& c = config_;
  const int T = ws.seq_len, E = c.embed_dim, HK = c.heads * c.key_size, D = c.data_dim;
  const int F = c.mlp_hidden, in_dim = c.token_dim();
  const size_t N = size_t(batch) * T, NE = N * E;
  const S clip = S(c.clip_act);
  const AttentionShape s = shape(batch, T);

  // x_0 = tokens or tokens Win, plus the positional codes P (T, E) of each sequence.
  if (c.embedding())
    mat(ws.x.data(), N, E).noalias() = mat(tokens, N, in_dim) * mat(params + embed_in_, in_dim, E);
  else
    std::copy(tokens, tokens + NE, ws.x.data());
  if (c.positional_codes)
    for (int b = 0; b < batch; ++b)
      mat(ws.x.data() + size_t(b) * T * E, T, E) += mat(ws.positions.data(), T, E);
  for (int l = 0; l < c.layers(); ++l) {
    const LayerOffsets& o = layers_[size_t(l)];
    const MixerKind kind = c.mixers[size_t(l)];
    const LayerView<S> a = layer_view(ws, l);
    if (c.layer_norm)
      layer_norm_forward(N, E, a.input, params + o.ln1_scale, params + o.ln1_bias,
                         ws.norm_cache_of(l, 0), a.attn_in);
    auto A = mat(static_cast<const S*>(a.attn_in), N, E);
    mat(a.q, N, HK).noalias() = A * mat(params + o.q, E, HK);
    mat(a.k, N, HK).noalias() = A * mat(params + o.k, E, HK);
    mat(a.v, N, HK).noalias() = A * mat(params + o.v, E, HK);
    if (l == 0 && c.positional_codes_qk) add_position_qk(params, o, batch, ws, a.q, a.k);
    const S* lambdas = mesa_lambdas(params, o, kind, ws);
    try {
      mixer_forward(kind, s, c.mesa, a.q, a.k, a.v, lambdas, a.cache, a.mixed,
                    !ws.forward_only && !c.mesa_recompute_inverses);
    } catch (const Error& e) {
      throw Error(fmt::format("layer {} ({}): {}", l, mixer_name(kind), e.what()), e.kind());
    }
    check_finite(c, a.mixed, N, T, HK, l, "the mixer output");
    auto M = mat(a.mid, N, E);
    M.noalias() = mat(a.mixed, N, HK) * mat(params + o.o, HK, E);
    M += mat(a.input, N, E);
    if (c.mlp) {
      if (c.layer_norm)
        layer_norm_forward(N, E, a.mid, params + o.ln2_scale, params + o.ln2_bias,
                           ws.norm_cache_of(l, 1), a.mlp_in);
      mlp_forward<S>(N, E, F, a.mlp_in, params + o.mlp_w1, nullptr, params + o.mlp_w2, nullptr,
                     ws.mlp_cache.data() + l * ws.mlp_block, a.pre_clip);
      mat(a.pre_clip, N, E) += M;
    }
    check_finite(c, a.pre_clip, N, T, E, l, "the residual stream");
    for (size_t i = 0; i < NE; ++i)
      a.output[i] = clip > 0 ? std::clamp(a.pre_clip[i], -clip, clip) : a.pre_clip[i];
  }
  // Prediction: the first D channels of x_L, or x_L Wout.
  if (c.embedding())
    mat(ws.out.data(), N, D).noalias() =
        mat(ws.x.data() + c.layers() * ws.stream_block, N, E) * mat(params + embed_out_, E, D);
  ws.forward_batch = batch;
  ws.forward_seconds += seconds_since(started);
}

// A backward must follow a forward of the same chunk on a workspace with gradient buffers.
template <class S>
static void check_backward(const Workspace<S>& ws, int batch) {
  if (ws.forward_only) fail("a backward pass needs a workspace made without forward_only");
  if (batch < 1 || batch != ws.forward_batch)
    fail("backward of {} sequences, but the last forward on this workspace ran {}", batch,
         ws.forward_batch);
}

template <class S>
void Transformer::backward(const S* params, const S* tokens, int batch, Workspace<S>& ws,
                           const S* d_pred, S* grads, S* grad_tokens) const {
  const auto started = std::chrono::steady_clock::now();
  check_backward(ws, batch);
  const ModelConfig& c = config_;
  const int T = ws.seq_len, E = c.embed_dim, D = c.data_dim;
  const size_t N = size_t(batch) * T;
  S* dx = ws.dx.data();
  // pred = x_L Wout:  dWout += x_L^T dpred,  dx_L = dpred Wout^T;  else dx_L = [dpred, 0].
  auto dPred = mat(d_pred, N, D);
  if (c.embedding()) {
    const S* x_last = ws.x.data() + c.layers() * ws.stream_block;
    mat(grads + embed_out_, E, D).noalias() += mat(x_last, N, E).transpose() * dPred;
    mat(dx, N, E).noalias() = dPred * mat(params + embed_out_, E, D).transpose();
  } else {
    auto dX = mat(dx, N, E);
    dX.rightCols(E - D).setZero();
    dX.leftCols(D) = dPred;
  }
  backward_blocks(params, tokens, batch, ws, grads, grad_tokens);
  ws.backward_seconds += seconds_since(started);
}

template <class S>
void Transformer::backward_from_stream(const S* params, const S* tokens, int batch,
                                       Workspace<S>& ws, const S* d_stream, S* grads,
                                       S* grad_tokens) const {
  const auto started = std::chrono::steady_clock::now();
  check_backward(ws, batch);
  const size_t NE = size_t(batch) * ws.seq_len * config_.embed_dim;
  std::copy(d_stream, d_stream + NE, ws.dx.data());
  backward_blocks(params, tokens, batch, ws, grads, grad_tokens);
  ws.backward_seconds += seconds_since(started);
}

// From dx_L in ws.dx down to the tokens, block by block (the lines each step differentiates
// are quoted above it).
template <class S>
void Transformer::backward_blocks(const S* params, const S* tokens, int batch, Workspace<S>& ws,
                                  S* grads, S* grad_tokens) const {
  const ModelConfig& c = config_;
  const int T = ws.seq_len, E = c.embed_dim, HK = c.heads * c.key_size;
  const int F = c.mlp_hidden, in_dim = c.token_dim();
  const size_t N = size_t(batch) * T, NE = N * E;
  const S clip = S(c.clip_act);
  const AttentionShape s = shape(batch, T);
  S* dx = ws.dx.data();
  S* dmixed = ws.dmixed.data();
  S* dq = ws.dqkv.data();
  S* dk = dq + ws.proj_block;
  S* dv = dk + ws.proj_block;
  S* d_branch = ws.d_branch.data();
  for (int l = c.layers() - 1; l >= 0; --l) {
    const LayerOffsets& o = layers_[size_t(l)];
    const MixerKind kind = c.mixers[size_t(l)];
    const LayerView<const S> a = std::as_const(ws).layer(l);
    // x_next = clip(y): the gradient passes only where |y| < c.
    if (clip > 0)
      for (size_t i = 0; i < NE; ++i)
        if (!(std::abs(a.pre_clip[i]) < clip)) dx[i] = 0;
    auto dX = mat(dx, N, E);
    // y = m + MLP(b), b = LN2(m) or m:  dm = dy + db (through LN2).
    if (c.mlp) {
      mlp_backward<S>(N, E, F, a.mlp_in, params + o.mlp_w1, params + o.mlp_w2,
                      ws.mlp_cache.data() + l * ws.mlp_block, dx, d_branch, grads + o.mlp_w1,
                      nullptr, grads + o.mlp_w2, nullptr, ws.scratch.data());
      if (c.layer_norm)
        layer_norm_backward(N, E, a.mid, params + o.ln2_scale, ws.norm_cache_of(l, 1), d_branch, dx,
                            grads + o.ln2_scale, grads + o.ln2_bias);
      else
        dX += mat(static_cast<const S*>(d_branch), N, E);
    }
    // m = x + mixed Wo:  dWo += mixed^T dm,  dmixed = dm Wo^T,  dx = dm + (projections).
    auto dM = mat(static_cast<const S*>(dx), N, E);
    mat(grads + o.o, HK, E).noalias() += mat(a.mixed, N, HK).transpose() * dM;
    mat(dmixed, N, HK).noalias() = dM * mat(params + o.o, HK, E).transpose();
    const S* lambdas = mesa_lambdas(params, o, kind, ws);
    S* d_lambdas = c.mesa_lambda_softplus ? ws.d_lambdas.data() : grads + o.lambdas;
    if (c.mesa_lambda_softplus) std::fill(ws.d_lambdas.begin(), ws.d_lambdas.end(), S(0));
    try {
      mixer_backward(kind, s, c.mesa, a.q, a.k, a.v, lambdas, a.cache, dmixed, dq, dk, dv,
                     d_lambdas, ws.scratch.data(), !c.mesa_recompute_inverses);
    } catch (const Error& e) {
      throw Error(fmt::format("layer {} ({}) backward: {}", l, mixer_name(kind), e.what()),
                  e.kind());
    }
    // lambda = softplus(theta):  d theta = d lambda * sigmoid(theta).
    if (kind == MixerKind::Mesa && c.mesa_lambda_softplus)
      for (int h = 0; h < c.heads; ++h)
        grads[o.lambdas + h] += ws.d_lambdas[h] / (S(1) + std::exp(-params[o.lambdas + h]));
    if (l == 0 && c.positional_codes_qk) position_qk_backward(o, batch, ws, dq, dk, grads);
    // q = a Wq (same for k, v):  dWq += a^T dq,  da = sum dq Wq^T;  a = LN1(x) or x.
    auto Amat = mat(a.attn_in, N, E);
    auto dA = mat(c.layer_norm ? d_branch : dx, N, E);
    if (c.layer_norm) dA.setZero();
    const S* d_proj[3] = {dq, dk, dv};
    const size_t w_off[3] = {o.q, o.k, o.v};
    for (int j = 0; j < 3; ++j) {
      auto dP = mat(d_proj[j], N, HK);
      mat(grads + w_off[j], E, HK).noalias() += Amat.transpose() * dP;
      dA.noalias() += dP * mat(params + w_off[j], E, HK).transpose();
      check_finite(c, d_proj[j], N, T, HK, l, "the gradient of the q/k/v projection");
    }
    if (c.layer_norm)
      layer_norm_backward(N, E, a.input, params + o.ln1_scale, ws.norm_cache_of(l, 0), d_branch, dx,
                          grads + o.ln1_scale, grads + o.ln1_bias);
    check_finite(c, dx, N, T, E, l, "the gradient of the layer input");
  }
  // x_0 = tokens Win (+ codes):  dWin += tokens^T dx_0,  dtokens = dx_0 Win^T.
  if (c.embedding()) {
    auto dX0 = mat(static_cast<const S*>(dx), N, E);
    mat(grads + embed_in_, in_dim, E).noalias() += mat(tokens, N, in_dim).transpose() * dX0;
    if (grad_tokens)
      mat(grad_tokens, N, in_dim).noalias() = dX0 * mat(params + embed_in_, in_dim, E).transpose();
  } else if (grad_tokens) {
    std::copy(dx, dx + NE, grad_tokens);
  }
}

#define MESALAB_INSTANTIATE(S)                                                                     \
  template void Transformer::init_params<S>(S*, uint64_t) const;                                   \
  template Workspace<S> Transformer::make_workspace<S>(int, int, bool) const;                      \
  template void Transformer::forward<S>(const S*, const S*, int, Workspace<S>&) const;             \
  template void Transformer::backward<S>(const S*, const S*, int, Workspace<S>&, const S*, S*, S*) \
      const;                                                                                       \
  template void Transformer::backward_from_stream<S>(const S*, const S*, int, Workspace<S>&,       \
                                                     const S*, S*, S*) const;                      \
  template double squared_error<S>(const Workspace<S>&, int, const S*, double*);                   \
  template void squared_error_gradient<S>(const Workspace<S>&, int, const S*, S, S*);              \
  template struct Workspace<S>;
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
