#pragma once
// Mesa layer (the paper's least-squares attention). Per head h, a least-squares regression
// from the keys k_i (the regression's inputs) to the values v_i (its targets), read out at
// the query q_t, with a learned lambda_h > 0:
//   R_t = (sum_{i<=t} k_i k_i^T + I / lambda_h)^{-1},   a_t = (sum_{i<=t} v_i k_i^T) R_t q_t,
// i.e. a_t = sum_{i<=t} (p_t . k_i) v_i with p_t = R_t q_t; the current token is included.
// Linear attention is the same with R_t = I; MesaNet (arXiv 2506.05233) uses the same names.
// R_t comes from the Sherman-Morrison recursion R_0 = lambda I,
//   R_t = R_{t-1} - R_{t-1} k_t k_t^T R_{t-1} / (1 + k_t^T R_{t-1} k_t),
// run per (sequence, head) with the K x K state in L1 and no allocation.
// Layouts are those of every mixer: q, k, v and the output head-major (column h*K + j).
// The official code names the inputs "v" (v_proj) and the targets "k" (k_proj) and writes
// the output head-minor (column j*H + h); mesa_params_from_official (model/official_layout.hpp)
// converts its weights.
//
// lambda: the parameter is lambda itself (R_0 = lambda I, as in the official code and the
// reference fixture), so d_lambdas is d loss / d lambda. Positivity is not built into the
// parametrisation; it is checked instead: lambda_h <= 0 (or non-finite), and a recursion whose
// 1 + k^T R k is <= 0 or non-finite, throw a runtime mesalab::Error naming the head and the
// time step (the caller adds layer and training step and keeps the last good checkpoint).
// The transformer can instead store theta with lambda = softplus(theta), positive by
// construction (ModelConfig::mesa_lambda_softplus, config model.mesa_lambda_param); it then
// passes the effective lambdas here and chains d lambda into d theta.
//
// Backward: hand-written. The forward stores every R_t in the cache (T K^2 values per
// sequence and head) and the backward applies them, dq_t = R_t dp_t; the dependence of R_t
// on the inputs and on lambda is folded into three (T x T)(T x K) products (derivation above
// mesa_attention_backward). Measured against the official code's reverse-time recomputation
// (R_{t-1} from R_t by the inverse rank-one update, O(K^2) memory) at B=8, T=50, H=4, K=20 in
// float with the same (GEMV-based) kernels: forward+backward 1.16 ms stored vs 1.20 ms
// reverse (the row-fused kernels since then bring the stored variant to ~0.95 ms), and float
// gradients 10x closer to double ones on O(1) inputs (dq 5e-6 vs 7e-5, dlambda 4e-6 vs 4e-5
// relative), because the downdate divides by 1 - k^T R_t k = 1 / d_t, which cancels.
//
// Float precision: forming p_t = R_t q_t explicitly (as the official code does) cancels when
// lambda ||k||^2 >> 1, since R_t has eigenvalues ~lambda orthogonal to the keys seen so far
// while the logits p_t . k_i stay O(1). On O(1) inputs, float vs double relative error of the
// output / of dk: 4e-6 / 4e-5 at lambda = 1, 2e-4 / 1.5e-2 at lambda = 100. At the model's
// init scale (weights 2e-4) the errors are ~3e-7 for any lambda in [1e-3, 1e3].
//
// Options (official mesa.py semantics):
//   schlag_norm: q <- q / (||q|| + 1e-16) and v <- v / (||v|| + 1e-16) per head and token;
//     the keys k are never normalised.
//   schlag_norm_targets: additionally v <- v / (||k|| + 1e-16) (the official quirk); it only
//     acts together with schlag_norm, as in the official code.
//   normalize_logits: the causal logit row l_t = (p_t . k_i)_{i<=t} becomes
//     l_t / (||l_t|| + 1e-16) before it multiplies the targets.
#include <cstddef>

#include "model/attention_shape.hpp"

namespace mesalab {

struct MesaOptions {
  bool schlag_norm = false;          // normalise queries and values per head and token
  bool schlag_norm_targets = false;  // official quirk: values also divided by ||keys||
                                     // (only together with schlag_norm)
  bool normalize_logits = false;     // L2-normalise the causal logit row (p_t . k_i)_{i<=t}
};

// Cache: per (sequence, head) p_t, the normalised q and v, the logits, norms and R_1..R_T
// (about T*K*K values, 20400 for T=50, K=20; 78% of the cache). Without the inverses
// (keep_inverses = false: a forward that no backward follows, or one whose backward
// recomputes them) only two K x K states are kept, 2*K*K + 3*T*K + T*T + 4*T + 4*K values.
// Scratch: 4*T*K + T*T + K values, plus T*K*K + T*K + 4*K for recomputed inverses.
size_t mesa_attention_cache_size(const AttentionShape& s, bool keep_inverses = true);
size_t mesa_attention_scratch_size(const AttentionShape& s);

// q, k, v, out: (B, T, H*K) head-major; lambdas: (H).
// keep_inverses = false runs the same arithmetic but keeps only R_t and R_{t-1}: the output
// is bit-identical, and the cache (sized for it) cannot feed a backward.
template <class S>
void mesa_attention_forward(const AttentionShape& s, const MesaOptions& opt, const S* q, const S* k,
                            const S* v, const S* lambdas, S* cache, S* out,
                            bool keep_inverses = true);

// Overwrites dq, dk, dv; accumulates into d_lambdas (H). inverses_in_cache must equal the
// forward's keep_inverses: with false the backward first recomputes each head's R_1..R_T
// into scratch (bit-identical gradients, a cache a quarter the size).
template <class S>
void mesa_attention_backward(const AttentionShape& s, const MesaOptions& opt, const S* q,
                             const S* k, const S* v, const S* lambdas, const S* cache,
                             const S* d_out, S* dq, S* dk, S* dv, S* d_lambdas, S* scratch,
                             bool inverses_in_cache = true);

}  // namespace mesalab
