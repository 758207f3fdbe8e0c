// Finite-difference gradient checks in double: central differences with h = 1e-6 against the
// hand-written backward passes of the linear and softmax mixers and of the whole Transformer
// (with and without activation clipping). A gradient passes when both
//   ||g - fd|| / ||fd||                            (norm-wise) and
//   max_i |g_i - fd_i| / max(|g_i|, |fd_i|, 1e-7)  (element-wise)
// are below 1e-6. Mutation tests show that the checker does flag wrong gradients.
//
// Making a 1e-6 element-wise tolerance meaningful at h = 1e-6 takes two precautions:
//  * Roundoff. Each output carries an error of ~eps |out|, so a difference quotient carries
//    ~eps |out| / h ~ 1e-10 |out|. The loss difference is therefore formed output by output,
//    sum_j [l(out_j^+) - l(out_j^-)], instead of subtracting two rounded totals (the same
//    central difference of the same loss, without the cancellation in the big sum).
//  * Conditioning. An entry whose gradient is tiny, or a perturbation that moves a pre-clip
//    value across the clip, cannot be resolved to 1e-6 by any h = 1e-6 difference. Such
//    draws are detected from the finite differences alone (never from the analytic
//    gradient, so a wrong backward cannot make itself untestable): a draw is used only if
//    no pre-clip value lies within 1e-4 of +-clip, no perturbation changes which values are
//    clipped, and the h and 2h differences agree to half the tolerance for every
//    entry. Otherwise the next seed is drawn.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "model/linear_attention.hpp"
#include "model/softmax_attention.hpp"
#include "model/transformer.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

constexpr double kStep = 1e-6;      // central-difference step
constexpr double kTol = 1e-6;       // both relative errors must stay below this
constexpr double kRelFloor = 1e-7;  // element-wise denominator floor
constexpr int kMaxDraws = 60;       // re-draws allowed for a testable case

using Vec = std::vector<double>;

// ---------------------------------------------------------------------------------------
// The checker.

struct GradError {
  double norm_rel = 0.0;  // ||g - fd|| / ||fd||
  double max_rel = 0.0;   // max_i |g_i - fd_i| / max(|g_i|, |fd_i|, 1e-7)
  double max_abs = 0.0;
  size_t worst_index = 0;
  bool ok() const { return norm_rel < kTol && max_rel < kTol; }
};

std::ostream& operator<<(std::ostream& os, const GradError& e) {
  return os << "norm rel err " << e.norm_rel << ", max element rel err " << e.max_rel << " (abs "
            << e.max_abs << ") at index " << e.worst_index;
}

GradError gradient_error(const double* analytic, const double* fd, size_t n) {
  GradError e;
  double diff2 = 0.0, fd2 = 0.0;
  for (size_t i = 0; i < n; ++i) {
    diff2 += (analytic[i] - fd[i]) * (analytic[i] - fd[i]);
    fd2 += fd[i] * fd[i];
  }
  // An all-zero reference is only matched by an all-zero gradient; NaN never matches.
  e.norm_rel = fd2 > 0 ? std::sqrt(diff2 / fd2) : (diff2 > 0 ? INFINITY : 0.0);
  if (std::isnan(diff2)) e.norm_rel = INFINITY;
  const auto d = testing::compare(analytic, fd, n, kRelFloor);
  e.max_rel = d.max_rel;
  e.max_abs = d.max_abs;
  e.worst_index = d.worst_index;
  return e;
}

GradError gradient_error(const Vec& analytic, const Vec& fd) {
  EXPECT_EQ(analytic.size(), fd.size());
  return gradient_error(analytic.data(), fd.data(), std::min(analytic.size(), fd.size()));
}

double norm(const Vec& x) {
  double s = 0.0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}

// A differentiable function seen through its outputs: eval() recomputes the outputs from
// the current inputs, loss_diff(a, b) = L(a) - L(b) summed output by output, and valid()
// (optional) says whether the current inputs lie in the same smooth piece as the base point.
struct Probe {
  std::function<const Vec&()> eval;
  std::function<double(const Vec&, const Vec&)> loss_diff;
  std::function<bool()> valid;
};

struct FiniteDifference {
  Vec fd;                   // central differences with step kStep
  bool trustworthy = true;  // see the file comment
  std::string why;          // reason when not trustworthy
};

// Central differences with respect to every element of `x` (restored afterwards).
FiniteDifference finite_difference(Vec& x, const Probe& probe) {
  FiniteDifference r;
  r.fd.resize(x.size());
  auto quotient = [&](size_t i, double h) {
    const double saved = x[i];
    x[i] = saved + h;
    const Vec plus = probe.eval();
    const bool ok_plus = !probe.valid || probe.valid();
    x[i] = saved - h;
    const Vec& minus = probe.eval();
    const bool ok_minus = !probe.valid || probe.valid();
    x[i] = saved;
    if (!ok_plus || !ok_minus) {
      r.trustworthy = false;
      r.why = "a perturbation of entry " + std::to_string(i) + " changes the clipping pattern";
    }
    return probe.loss_diff(plus, minus) / (2 * h);
  };
  for (size_t i = 0; i < x.size(); ++i) {
    r.fd[i] = quotient(i, kStep);
    const double coarse = quotient(i, 2 * kStep);
    const double scale = std::max(std::abs(r.fd[i]), kRelFloor);
    if (r.trustworthy && !(std::abs(r.fd[i] - coarse) <= 0.5 * kTol * scale)) {
      r.trustworthy = false;
      r.why = "entry " + std::to_string(i) + " is not resolved by h = 1e-6 (fd " +
              std::to_string(r.fd[i]) + ", at 2h " + std::to_string(coarse) + ")";
    }
  }
  probe.eval();  // leave the caller's state at the base point
  return r;
}

Vec normal_vector(size_t n, Rng& rng, double std = 1.0) {
  Vec x(n);
  for (double& v : x) v = std * rng.normal();
  return x;
}

// ---------------------------------------------------------------------------------------
// The mixers alone: L = sum(out .* R).

struct Mixer {
  const char* name;
  size_t (*cache_size)(const AttentionShape&);
  void (*forward)(const AttentionShape&, const double*, const double*, const double*, double*,
                  double*);
  void (*backward)(const AttentionShape&, const double*, const double*, const double*,
                   const double*, const double*, double*, double*, double*, double*);
};

const Mixer kLinear{"linear", linear_attention_cache_size, linear_attention_forward<double>,
                    linear_attention_backward<double>};
const Mixer kSoftmax{"softmax", softmax_attention_cache_size, softmax_attention_forward<double>,
                     softmax_attention_backward<double>};

struct MixerGrads {
  uint64_t seed = 0;
  Vec analytic[3];  // d/dq, d/dk, d/dv
  Vec fd[3];
};

// Draws random q, k, v and R from seeds `seed`, `seed + 1`, ... until the finite differences
// resolve every entry, then returns both gradients.
MixerGrads mixer_grads(const Mixer& m, uint64_t seed) {
  const AttentionShape s{2, 7, 2, 3};
  const size_t n = s.tokens() * size_t(s.width());
  for (int attempt = 0; attempt < kMaxDraws; ++attempt, ++seed) {
    Rng rng{seed, 101};
    Vec qkv[3] = {normal_vector(n, rng), normal_vector(n, rng), normal_vector(n, rng)};
    const Vec r = normal_vector(n, rng);
    Vec cache(m.cache_size(s)), out(n);
    Probe probe;
    probe.eval = [&]() -> const Vec& {
      m.forward(s, qkv[0].data(), qkv[1].data(), qkv[2].data(), cache.data(), out.data());
      return out;
    };
    probe.loss_diff = [&](const Vec& a, const Vec& b) {
      double d = 0.0;
      for (size_t i = 0; i < n; ++i) d += r[i] * (a[i] - b[i]);
      return d;
    };
    MixerGrads g;
    g.seed = seed;
    bool trustworthy = true;
    for (int j = 0; j < 3 && trustworthy; ++j) {
      FiniteDifference f = finite_difference(qkv[j], probe);
      trustworthy = f.trustworthy;
      g.fd[j] = std::move(f.fd);
    }
    if (!trustworthy) continue;
    probe.eval();
    for (auto& a : g.analytic) a.assign(n, NAN);  // backward must overwrite every element
    Vec scratch(size_t(s.seq_len) * s.seq_len);
    m.backward(s, qkv[0].data(), qkv[1].data(), qkv[2].data(), cache.data(), r.data(),
               g.analytic[0].data(), g.analytic[1].data(), g.analytic[2].data(), scratch.data());
    return g;
  }
  ADD_FAILURE() << m.name << ": no draw with finite differences resolved to 1e-6";
  return {};
}

void check_mixer(const Mixer& m) {
  const MixerGrads g = mixer_grads(m, 7);
  const char* names[3] = {"dq", "dk", "dv"};
  for (int j = 0; j < 3; ++j) {
    const GradError e = gradient_error(g.analytic[j], g.fd[j]);
    EXPECT_TRUE(e.ok()) << m.name << " " << names[j] << " (seed " << g.seed << "): " << e;
    // The reference must not be trivially zero, or the check would prove nothing.
    EXPECT_GT(norm(g.fd[j]), 1e-2) << m.name << " " << names[j];
  }
}

TEST(MixerGradcheck, LinearAttention) { check_mixer(kLinear); }
TEST(MixerGradcheck, SoftmaxAttention) { check_mixer(kSoftmax); }

// ---------------------------------------------------------------------------------------
// The whole model through Transformer::forward/backward<double>: loss = sq / (2 B T), d_pred
// scaled by 1/(B T).

constexpr int kB = 3, kT = 6, kD = 2, kE = 8, kH = 2, kK = 3;
constexpr double kWeightStd = 0.4;
constexpr double kClip = 1.5;
constexpr double kClipMargin = 1e-4;  // no pre-clip value may lie this close to +-clip
constexpr size_t kN = size_t(kB) * kT;

ModelConfig model_config(MixerKind kind, int layers, double clip) {
  ModelConfig c;
  c.data_dim = kD;
  c.embed_dim = kE;
  c.heads = kH;
  c.key_size = kK;
  c.mixers.assign(size_t(layers), kind);
  c.clip_act = clip;
  c.init_std = kWeightStd;  // init_params draws every weight from N(0, 0.4^2)
  return c;
}

struct ModelCase {
  uint64_t seed = 0;
  Vec params, tokens, labels;
};

// Tokens ~ N(0, token_std^2) except, without embedding, the first D (readout) channels,
// which are 0 as in the constructed tokens [0, s_t, s_t, s_{t-1}]; labels ~ N(0, 1).
// LayerNorm scales and biases (initialised to 1 and 0) get N(0, 0.3^2) added so that
// their gradients are generic.
ModelCase draw_case(const Transformer& model, uint64_t seed, double token_std) {
  ModelCase c;
  c.seed = seed;
  c.params.resize(model.num_params());
  model.init_params(c.params.data(), seed);
  Rng rng{seed, 202};
  for (const auto& spec : model.layout().specs())
    if (spec.name.ends_with(".scale") || spec.name.ends_with(".bias"))
      for (size_t j = 0; j < spec.size; ++j) c.params[spec.offset + j] += 0.3 * rng.normal();
  const int width = model.config().token_dim();
  c.tokens = normal_vector(kN * size_t(width), rng, token_std);
  if (!model.config().embedding())
    for (size_t n = 0; n < kN; ++n) std::fill_n(c.tokens.begin() + n * width, kD, 0.0);
  c.labels = normal_vector(kN * kD, rng);
  return c;
}

double model_loss(const Transformer& model, const ModelCase& c, Workspace<double>& ws) {
  return testing::forward_backward<double>(model, c.params.data(), c.tokens.data(), c.labels.data(),
                                           kB, ws) /
         (2.0 * kN);
}

// The prediction (B*T, D): the embedding's output, or the first D channels of the final
// residual stream.
Vec predictions(const Workspace<double>& ws) {
  const PredictionView<double> pred = ws.prediction();
  Vec p(kN * kD);
  for (size_t n = 0; n < kN; ++n) std::copy_n(pred.data + n * pred.stride, kD, p.begin() + n * kD);
  return p;
}

struct ClipStats {
  size_t clipped = 0;              // pre-clip values with |y| > clip, over all layers
  double min_distance = INFINITY;  // min over all pre-clip values of ||y| - clip|
};

ClipStats clip_stats(const Workspace<double>& ws, double clip) {
  ClipStats st;
  for (double y : ws.y) {
    if (std::abs(y) > clip) ++st.clipped;
    st.min_distance = std::min(st.min_distance, std::abs(std::abs(y) - clip));
  }
  return st;
}

std::vector<char> clip_pattern(const Workspace<double>& ws, double clip) {
  std::vector<char> p(ws.y.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = std::abs(ws.y[i]) < clip;
  return p;
}

struct ModelGrads {
  ModelCase c;
  ClipStats clip;
  Vec params, tokens;        // analytic (Transformer::backward)
  Vec fd_params, fd_tokens;  // central differences
};

// Draws cases from `seed` on until one is testable (see the file comment), then returns the
// analytic gradients of `analytic_model` and the finite differences of `fd_model` at it
// (the same model except in the mutation test, which passes an unclipped analytic model).
ModelGrads model_grads(const Transformer& analytic_model, const Transformer& fd_model,
                       uint64_t seed, double token_std) {
  const int L = fd_model.config().layers();
  const double clip = fd_model.config().clip_act;
  auto ws = fd_model.make_workspace<double>(kB, kT);
  for (int attempt = 0; attempt < kMaxDraws; ++attempt, ++seed) {
    ModelGrads g;
    g.c = draw_case(fd_model, seed, token_std);
    ModelCase& c = g.c;
    model_loss(fd_model, c, ws);
    if (clip > 0) {
      g.clip = clip_stats(ws, clip);
      if (g.clip.min_distance <= kClipMargin) continue;
    }
    const std::vector<char> base_pattern = clip > 0 ? clip_pattern(ws, clip) : std::vector<char>{};
    Vec pred;
    Probe probe;
    probe.eval = [&]() -> const Vec& {
      model_loss(fd_model, c, ws);
      pred = predictions(ws);
      return pred;
    };
    // sq / (2BT) difference, output by output: (a - y)^2 - (b - y)^2 = (a - b)(a + b - 2y).
    probe.loss_diff = [&](const Vec& a, const Vec& b) {
      double d = 0.0;
      for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] + b[i] - 2 * c.labels[i]);
      return d / (2.0 * kN);
    };
    if (clip > 0) probe.valid = [&] { return clip_pattern(ws, clip) == base_pattern; };
    FiniteDifference fp = finite_difference(c.params, probe);
    if (!fp.trustworthy) continue;
    FiniteDifference ft = finite_difference(c.tokens, probe);
    if (!ft.trustworthy) continue;
    g.fd_params = std::move(fp.fd);
    g.fd_tokens = std::move(ft.fd);

    auto analytic_ws = analytic_model.make_workspace<double>(kB, kT);
    g.params.assign(analytic_model.num_params(), 0.0);  // run accumulates into grads
    g.tokens.assign(c.tokens.size(), NAN);              // ... and overwrites grad_tokens
    testing::forward_backward<double>(analytic_model, c.params.data(), c.tokens.data(),
                                      c.labels.data(), kB, analytic_ws, g.params.data(), 1.0 / kN,
                                      nullptr, g.tokens.data());
    return g;
  }
  ADD_FAILURE() << "no testable draw in " << kMaxDraws << " seeds";
  return {};
}

// Token scales: 1 in general (with clipping: large enough that the clip is really exercised);
// 0.5 for unclipped LSA, where a 3-layer stack (cubic per layer) would otherwise blow up.
constexpr double kTokenStd = 1.0;
constexpr double kTokenStdUnclippedLinear = 0.5;

void check_model(const ModelConfig& config, double token_std) {
  const Transformer model(config);
  const int layers = config.layers();
  const double clip = config.clip_act;
  const ModelGrads g = model_grads(model, model, 1000 + 100 * uint64_t(layers), token_std);
  ASSERT_EQ(g.params.size(), model.num_params());
  const std::string seed = "seed " + std::to_string(g.c.seed);
  if (clip > 0) {
    // The clip must really be exercised: some pre-clip values exceed it (their gradient is
    // cut), while others do not (gradient flows).
    const size_t total = size_t(layers) * kN * kE;
    ASSERT_GT(total, 0u);
    EXPECT_GT(g.clip.clipped, 0u) << "no pre-clip value exceeds the clip, " << seed;
    EXPECT_LT(g.clip.clipped, total) << seed;
    EXPECT_GT(g.clip.min_distance, kClipMargin) << seed;
  }
  for (const auto& spec : model.layout().specs()) {
    const GradError e =
        gradient_error(g.params.data() + spec.offset, g.fd_params.data() + spec.offset, spec.size);
    EXPECT_TRUE(e.ok()) << spec.name << " (" << seed << "): " << e;
  }
  const GradError e = gradient_error(g.tokens, g.fd_tokens);
  EXPECT_TRUE(e.ok()) << "d loss / d tokens (" << seed << "): " << e;
  // Non-trivial references.
  EXPECT_GT(norm(g.fd_params), 1e-3) << seed;
  EXPECT_GT(norm(g.fd_tokens), 1e-3) << seed;
}

void check_model(MixerKind kind, int layers, double clip) {
  SCOPED_TRACE(std::string(mixer_name(kind)) + ", " + std::to_string(layers) +
               " layer(s), clip_act " + std::to_string(clip));
  check_model(model_config(kind, layers, clip),
              clip == 0 && kind == MixerKind::Linear ? kTokenStdUnclippedLinear : kTokenStd);
}

TEST(ModelGradcheck, LinearOneLayerClipped) { check_model(MixerKind::Linear, 1, kClip); }
TEST(ModelGradcheck, LinearThreeLayersClipped) { check_model(MixerKind::Linear, 3, kClip); }
TEST(ModelGradcheck, LinearOneLayerUnclipped) { check_model(MixerKind::Linear, 1, 0.0); }
TEST(ModelGradcheck, LinearThreeLayersUnclipped) { check_model(MixerKind::Linear, 3, 0.0); }
TEST(ModelGradcheck, SoftmaxOneLayerClipped) { check_model(MixerKind::Softmax, 1, kClip); }
TEST(ModelGradcheck, SoftmaxThreeLayersClipped) { check_model(MixerKind::Softmax, 3, kClip); }
TEST(ModelGradcheck, SoftmaxOneLayerUnclipped) { check_model(MixerKind::Softmax, 1, 0.0); }
TEST(ModelGradcheck, SoftmaxThreeLayersUnclipped) { check_model(MixerKind::Softmax, 3, 0.0); }

// The full transformer: pre-LN blocks with MLP, a softmax first block then linear attention
// (the paper's hybrid), clipping active.
TEST(ModelGradcheck, LayerNormMlpHybridClipped) {
  ModelConfig c = model_config(MixerKind::Linear, 2, kClip);
  c.mixers[0] = MixerKind::Softmax;
  c.layer_norm = true;
  c.mlp = true;
  c.mlp_hidden = 5;
  check_model(c, kTokenStd);
}

// Raw tokens: input and output embedding with positional codes, MLP without LayerNorm.
TEST(ModelGradcheck, EmbeddingPositionalCodesMlp) {
  ModelConfig c = model_config(MixerKind::Linear, 2, 0.0);
  c.input_dim = 3;
  c.positional_codes = true;
  c.mlp = true;
  c.mlp_hidden = 4;
  check_model(c, kTokenStd);
}

// Raw tokens with the codes concatenated to the first block's queries and keys only
// (q = a Wq + P Wq_pos). Linear attention: under softmax, the slowest code columns are
// nearly constant over t, so they shift a logit row by a near-constant, to which softmax
// is invariant, and their gradients are too small for h = 1e-6 to resolve.
TEST(ModelGradcheck, EmbeddingPositionalCodesQk) {
  ModelConfig c = model_config(MixerKind::Linear, 2, 0.0);
  c.input_dim = 3;
  c.positional_codes_qk = true;
  check_model(c, kTokenStdUnclippedLinear);
}

// LayerNorm without MLP in front of a mesa layer, with an embedding.
TEST(ModelGradcheck, LayerNormMesaWithEmbedding) {
  ModelConfig c = model_config(MixerKind::Mesa, 1, kClip);
  c.layer_norm = true;
  c.input_dim = kD;
  check_model(c, kTokenStd);
}

// The finite differences above are formed from ws.prediction(); this pins that
// those are what squared_error scores: sq = sum (pred - label)^2, also per token.
TEST(ModelGradcheck, ReturnedLossMatchesPredictions) {
  const Transformer model(model_config(MixerKind::Softmax, 3, kClip));
  const ModelCase c = draw_case(model, 5, kTokenStd);
  auto ws = model.make_workspace<double>(kB, kT);
  std::vector<double> per_token(kN, NAN);
  const double sq =
      testing::forward_backward<double>(model, c.params.data(), c.tokens.data(), c.labels.data(),
                                        kB, ws, nullptr, 0.0, per_token.data());
  const Vec p = predictions(ws);
  double expected = 0.0;
  for (size_t n = 0; n < kN; ++n) {
    double token = 0.0;
    for (int d = 0; d < kD; ++d)
      token += (p[n * kD + d] - c.labels[n * kD + d]) * (p[n * kD + d] - c.labels[n * kD + d]);
    EXPECT_NEAR(per_token[n], token, 1e-12 * (1 + token)) << "token " << n;
    expected += token;
  }
  EXPECT_NEAR(sq, expected, 1e-12 * expected);
  EXPECT_GT(sq, 0.0);
}

// backward() accumulates into grads (zeroing is the caller's job) and overwrites grad_tokens.
TEST(ModelGradcheck, ParameterGradientsAccumulate) {
  const Transformer model(model_config(MixerKind::Linear, 2, kClip));
  const ModelCase c = draw_case(model, 9, kTokenStd);
  auto ws = model.make_workspace<double>(kB, kT);
  Vec once(model.num_params(), 0.0), tokens_once(c.tokens.size(), 0.0);
  testing::forward_backward<double>(model, c.params.data(), c.tokens.data(), c.labels.data(), kB,
                                    ws, once.data(), 1.0 / kN, nullptr, tokens_once.data());
  Vec twice = once, tokens_twice(c.tokens.size(), 123.0);
  testing::forward_backward<double>(model, c.params.data(), c.tokens.data(), c.labels.data(), kB,
                                    ws, twice.data(), 1.0 / kN, nullptr, tokens_twice.data());
  ASSERT_GT(norm(once), 0.0);
  for (size_t i = 0; i < once.size(); ++i) EXPECT_DOUBLE_EQ(twice[i], 2 * once[i]) << i;
  for (size_t i = 0; i < tokens_once.size(); ++i)
    EXPECT_DOUBLE_EQ(tokens_twice[i], tokens_once[i]) << i;
}

// ---------------------------------------------------------------------------------------
// The checker itself must be able to fail.

TEST(GradcheckMutation, DetectsOnePerturbedEntry) {
  const MixerGrads g = mixer_grads(kLinear, 7);
  for (int j = 0; j < 3; ++j) {
    ASSERT_TRUE(gradient_error(g.analytic[j], g.fd[j]).ok());
    for (size_t i : {size_t(0), g.fd[j].size() / 2, g.fd[j].size() - 1}) {
      Vec wrong = g.analytic[j];
      wrong[i] += 1e-3;
      const GradError e = gradient_error(wrong, g.fd[j]);
      EXPECT_FALSE(e.ok()) << "entry " << i << " of gradient " << j << ": " << e;
      EXPECT_GT(e.max_rel, kTol);
      EXPECT_GT(e.norm_rel, kTol);
      EXPECT_EQ(e.worst_index, i);
    }
  }
}

TEST(GradcheckMutation, DetectsPerturbedModelGradient) {
  const Transformer model(model_config(MixerKind::Softmax, 1, kClip));
  const ModelGrads g = model_grads(model, model, 1100, kTokenStd);
  ASSERT_TRUE(gradient_error(g.params, g.fd_params).ok());
  Vec wrong = g.params;
  const size_t i = model.layer(0).q + 1;
  wrong[i] += 1e-3;
  const GradError e = gradient_error(wrong, g.fd_params);
  EXPECT_FALSE(e.ok()) << e;
  EXPECT_EQ(e.worst_index, i);
}

TEST(GradcheckMutation, DetectsWrongSignNaNAndZero) {
  const MixerGrads g = mixer_grads(kSoftmax, 7);
  Vec wrong = g.analytic[1];
  for (double& x : wrong) x = -x;
  EXPECT_FALSE(gradient_error(wrong, g.fd[1]).ok());
  wrong = g.analytic[1];
  wrong[3] = NAN;
  EXPECT_FALSE(gradient_error(wrong, g.fd[1]).ok());
  EXPECT_FALSE(gradient_error(Vec(wrong.size(), 0.0), g.fd[1]).ok());
}

// A backward that ignores the clip (the analytic gradient of the unclipped model) must be
// caught by finite differences of the clipped model: the clipped checks exercise the mask.
TEST(GradcheckMutation, DetectsIgnoredClipMask) {
  const Transformer clipped(model_config(MixerKind::Linear, 1, kClip));
  const Transformer unclipped(model_config(MixerKind::Linear, 1, 0.0));
  const ModelGrads g = model_grads(unclipped, clipped, 1100, kTokenStd);
  ASSERT_GT(g.clip.clipped, 0u);
  EXPECT_FALSE(gradient_error(g.params, g.fd_params).ok());
  EXPECT_FALSE(gradient_error(g.tokens, g.fd_tokens).ok());
}

}  // namespace
}  // namespace mesalab
