#pragma once
// Linear probes of the residual stream (SPEC_EXPERIMENTS.md 5, official probe_layers.py):
// for every layer l = 0..L (0 = the model input, l = the stream after block l) and every time
// step t, an ordinary least-squares map P (no bias, no ridge, minimum-norm) is fitted
// in-sample on one batch,
//   P = argmin_P || A_{t,l} P - Y_t ||_F,   A_{t,l}: (B, E) activations,  Y_t: (B, D) targets,
// and scored by loss = sum (A P - Y)^2 / (2 B_eff) (MSE / 2 summed over output dims) and
// R^2 = 1 - SSE / SST. Targets, with u_t = s_t the observed state at token t:
//   Current:         Y = u_t
//   Next:            Y = s_{t+1}
//   InverseCurrent:  Y = (sum_{i<t} u_i u_i^T + lambda I)^{-1} u_t   (current token excluded)
//   Implicit:        the InverseCurrent probe's output p_t = A P read as the mesa optimizer's
//                    intermediate: s_hat_{t+1} = 0.5 p_t^T C_t, C_t = sum_{i<t} u_i u_{i+1}^T,
//                    scored by the plain MSE |s_hat - s_{t+1}|^2 / (n D) (official
//                    implicit_target; its "GD" reference 0.45 u_t^T C_t is implicit_reference)
//   Features:        Y = phi(u_t), the nonlinear generator's own feature map of the current
//                    state (nonlinear data): does the model compute the features that make
//                    the dynamics linear?
// plus the control reference: s_{t+1} regressed on the ideal preconditioned vector itself.
// Time steps are token indices t = 0..T-1 here (the paper's t = 1..T); all math is in double
// and every fit is independent, so results do not depend on the thread count.
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/transformer.hpp"
#include "train/evaluation.hpp"

namespace mesalab {

enum class ProbeTarget { Current, Next, InverseCurrent, Implicit, Features };

// "current", "next", "inverse", "implicit", "features".
std::string_view probe_target_name(ProbeTarget target);
// Inverse of probe_target_name; an unknown name throws Error listing the allowed names.
ProbeTarget parse_probe_target(std::string_view name);
// A target name or "all": current, next and inverse, plus features on nonlinear data.
std::vector<ProbeTarget> parse_probe_targets(std::string_view name, const DataConfig& data);

inline constexpr double kCleanTargetLimit = 2.0;
inline constexpr double kImplicitScale = 0.5;            // s_hat = 0.5 p^T C (official)
inline constexpr double kImplicitReferenceScale = 0.45;  // its GD reference 0.45 u^T C

struct ProbeOptions {
  double lambda = 1e-3;  // probe_lambda of the InverseCurrent target, > 0
  // Outlier filter of InverseCurrent and the control: samples with target-norm z-score
  // (|y_b| - mean_b |y|) / std_b |y| >= outlier_z are dropped (std with ddof 0, as jnp.std).
  // The paper's value is missing from the official code; +inf (default) keeps every sample.
  // Must be > 0, which guarantees at least one kept sample.
  double outlier_z = std::numeric_limits<double>::infinity();
  // Next: drop samples with any entry of s_{t+1} >= kCleanTargetLimit (the official
  // clean_target_probe; one-sided as there).
  bool clean_target = false;
  // The data's feature map (nonlinear_features of the run's data), needed by the Features
  // target only; empty (dim 0) otherwise.
  NonlinearFeatures features;
  void validate() const;  // throws Error naming the offending field
};

// The options' feature map for a run's data: its nonlinear_features on nonlinear data, else
// none.
NonlinearFeatures probe_features(const DataConfig& data);

// Residual-stream activations of one batch, as double.
struct LayerActivations {
  int batch = 0, seq_len = 0, layers = 0, width = 0;  // B, T, L, E
  std::vector<double> values;                         // (L+1, T, B, E)
  // A_{t,l}: the (B, E) row-major block of layer l at time step t.
  const double* at(int layer, int t) const {
    return values.data() + (size_t(layer) * seq_len + size_t(t)) * size_t(batch) * width;
  }
};

// Runs the model forward (float, as in training) over the batch in chunks of kChunkSequences
// sequences and keeps the residual stream entering every layer and the final one:
// A_{t,l}[b] = x_l[b, t], l = 0..L. For constructed tokens x_0 is the token itself; with an
// embedding it is the embedded input (tokens Win, plus the positional codes).
LayerActivations collect_activations(const Transformer& model, const float* params,
                                     const TokenBatch& batch);

// y_{b,t} = (sum_{i<t} u_{b,i} u_{b,i}^T + lambda I)^{-1} u_{b,t}, u_{b,t} = states[b, t, :];
// for t = 0 the sum is empty and y = u_0 / lambda. Per sequence the Gram sum is kept running
// and every (b, t) is solved by a fresh Cholesky factorisation (Eigen LLT) of the D x D matrix.
// states: (B, T+1, D) row-major; returns (T, B, D).
std::vector<double> preconditioned_inputs(const double* states, int batch, int seq_len, int dim,
                                          double lambda);

// The targets Y_t of a probe, (T, B, D): states rows t (Current), t+1 (Next),
// preconditioned_inputs (InverseCurrent and Implicit, whose probe is fitted to them), or
// phi(states row t) (Features, with options.features of the batch's dimension).
std::vector<double> probe_targets(ProbeTarget target, const TokenBatch& batch,
                                  const ProbeOptions& options);

// keep_b = 1 unless z_b = (|y_b| - mean |y|) / std |y| >= z_threshold (std with ddof 0; all
// kept when std = 0 or z_threshold = +inf). y: (rows, dim).
std::vector<char> outlier_keep_mask(const double* y, int rows, int dim, double z_threshold);

// P = argmin_P |A P - Y|_F with the minimum Frobenius norm among all minimisers, by a complete
// orthogonal decomposition A Pi = Q [T 0; 0 0] Z (Eigen's default rank threshold), so columns of
// A that are zero or linearly dependent get no spurious weight. a: (rows, in_dim), y: (rows,
// out_dim), both row-major; returns P (in_dim, out_dim) row-major.
std::vector<double> least_squares_probe(const double* a, const double* y, int rows, int in_dim,
                                        int out_dim);

struct ProbeFit {
  double loss = 0.0;  // SSE / (2 n), n = kept rows
  double r2 = 0.0;    // 1 - SSE / SST, SST = sum_d sum_b (y_bd - mean_b y_bd)^2 (NaN if SST = 0)
  int kept = 0;       // n
};

// Fits least_squares_probe on the rows with keep[b] != 0 (every row when keep is null) and
// scores it on the same rows: SSE = sum (A P - Y)^2.
ProbeFit fit_probe(const double* a, const double* y, int rows, int in_dim, int out_dim,
                   const std::vector<char>* keep = nullptr);

// Rows of one probe data set: activations a (rows, in_dim), targets y (rows, out_dim),
// row-major, and an optional keep mask (null: every row).
struct ProbeRows {
  const double* a = nullptr;
  const double* y = nullptr;
  int rows = 0;
  const std::vector<char>* keep = nullptr;
};

// Fits the probe on the kept rows of `fit_rows` and scores it on the kept rows of
// `score_rows` (loss, r2 and kept as in ProbeFit, of the scored rows). With the same rows for
// both this is fit_probe; with another batch it is a held-out probe, which cannot interpolate.
ProbeFit fit_and_score_probe(const ProbeRows& fit_rows, const ProbeRows& score_rows, int in_dim,
                             int out_dim);

struct ProbeResult {
  ProbeTarget target = ProbeTarget::Current;
  int layers = 0;            // L: there are L + 1 probed activations per time step
  int seq_len = 0;           // T
  std::vector<double> loss;  // (T, L+1) row-major
  std::vector<double> r2;    // (T, L+1)
  std::vector<int> kept;     // (T): samples kept at t (the filter depends on t only)
  double loss_at(int t, int layer) const { return loss[size_t(t) * (layers + 1) + layer]; }
  double r2_at(int t, int layer) const { return r2[size_t(t) * (layers + 1) + layer]; }
};

// C_t = sum_{i<t} u_i u_{i+1}^T per sequence (D x D, row-major), u = states; (T, B, D, D).
std::vector<double> cross_sums(const TokenBatch& batch);

// One probe per (t, l) on the given activations of `batch`. The outlier filter applies to
// InverseCurrent and Implicit, the clean-target filter to Next. OpenMP over t.
ProbeResult run_probe(const LayerActivations& acts, const TokenBatch& batch, ProbeTarget target,
                      const ProbeOptions& options);

// run_probe fitted on one batch and scored on another (a held-out split): per (t, l) the
// probe is fitted on fit_acts/fit_batch and its loss and R^2 are those on score_acts/
// score_batch (the outlier filter applies to each batch's own targets). The batches must come
// from the same model and data shape.
ProbeResult run_held_out_probe(const LayerActivations& fit_acts, const TokenBatch& fit_batch,
                               const LayerActivations& score_acts, const TokenBatch& score_batch,
                               ProbeTarget target, const ProbeOptions& options);

// The control reference: per t, s_{t+1} regressed (as a probe, same filter) on the ideal
// preconditioned vector y_t = (sum_{i<t} u_i u_i^T + lambda I)^{-1} u_t.
struct ControlResult {
  std::vector<double> loss, r2;  // (T)
  std::vector<int> kept;         // (T)
};
ControlResult control_probe(const TokenBatch& batch, const ProbeOptions& options);

// The implicit target's reference: s_hat_{t+1} = 0.45 u_t^T C_t on every sample, plain MSE
// and R^2 per t (kept = B).
ControlResult implicit_reference(const TokenBatch& batch);

// CSV with header "target,layer,t,loss,r2", one row per (target, layer, t) with t = 1..T (the
// paper's time step, as eval.csv; token index t - 1); the control's rows have target
// "control" and an empty layer field.
std::string probes_csv(const std::vector<ProbeResult>& results, const ControlResult* control);

// {"seq_len": T, "layers": L, "probes": {"<target>": {"loss": [T][L+1], "r2": [T][L+1],
//  "kept": [T], "mean_loss": [L+1]}, ...}, "control": {"loss": [T], "r2": [T], "kept": [T]}}
// ("control" only if given). Non-finite numbers are written as null.
nlohmann::json probes_json(const std::vector<ProbeResult>& results, const ControlResult* control);

}  // namespace mesalab
