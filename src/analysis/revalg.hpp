#pragma once
// Reverse-engineering trained attention models on constructed tokens (SPEC_EXPERIMENTS.md 3,
// "GD++ / RevAlg-d" and "Parameter extraction from a trained model (TFSubdiagonals)").
//
// Tokens e_t = [u_0, u_1, u_2, u_3] = [0, s_t, s_t, s_{t-1}] (four slots of width D, E = 4D,
// s_0 := 0). For head h of a layer (Wq, Wk, Wv: (E, H K), Wo: (H K, E), row-major; head h owns
// columns hK..(h+1)K-1 of Wq/Wk/Wv and rows hK..(h+1)K-1 of Wo, written P_h: (K, E)):
//   M_QK = Wq_h Wk_h^T  (E x E),   M_PV = Wv_h P_h  (E x E),
// so a linear-attention head adds  out_t = sum_{i<=t} (e_t M_QK e_i^T) (e_i M_PV)  (row vectors).
// Each M is viewed as a 4 x 4 grid of D x D blocks M[a][b] (rows: slot a of the query token
// resp. the value token; columns: slot b of the key token resp. the output).
//
// Part 1, weight structure: per block, the scalar m = tr(M[a][b]) / D (the official
// TFSubdiagonals value) and how much of the block's energy ||M[a][b]||_F^2 is diagonal or a
// scaled identity; per matrix, the share of the total energy on the block diagonals.
//
// Part 2, one layer = one learned-GD-like step (the paper's Fig. 2 / Prop. 1): with the block
// scalars qk_h[a][b] of M_QK and pv_h[c] of block (c, 0) of M_PV (value slot c -> readout slot 0),
// the RevAlg-1 prediction for the unmasked tokens (u_1 = u_2 = s, u_3 = s_{-1}; slot 0 is zero)
// is
//   pred_t = sum_h sum_{i<=t} sum_{a,b,c in {1,2,3}} qk_h[a][b] pv_h[c] (u_a(t) . u_b(i)) u_c(i)^T
// and, grouping the slots by the state they carry (type(1) = type(2) = cur: s, type(3) = prev:
// s_{-1}), with C_kv(t) = sum_{i<=t} x_k(i) x_v(i)^T for x_cur = s, x_prev = s_{-1}:
//   pred_t = sum_{q,k,v in {cur, prev}} w[q][k][v] x_q(t)^T C_kv(t),
//   w[q][k][v] = sum_h (sum_{type(a)=q, type(b)=k} qk_h[a][b]) (sum_{type(c)=v} pv_h[c]).
// This is OneLayerRevAlg_Linear of the official code generalised to H heads and full tokens
// (the official version assumes mask_inputs, i.e. [0, 0, s_t, s_{t-1}], where slot 1 drops
// out). One GD step from W = 0 (eta C s_t in SPEC.md's column form) is the special case
// w[cur][prev][cur] = eta with every other w = 0.
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "analysis/gd_step.hpp"
#include "core/eigen_maps.hpp"
#include "model/transformer.hpp"
#include "train/run_config.hpp"

namespace mesalab {

inline constexpr int kTokenSlots = 4;  // [0, s_t, s_t, s_{t-1}]

struct BlockStats {
  double scalar = 0.0;             // m = tr(B) / D
  double energy = 0.0;             // ||B||_F^2
  double diag_fraction = 0.0;      // sum_j B_jj^2 / ||B||_F^2 (0 for a zero block)
  double identity_fraction = 0.0;  // ||m I||_F^2 / ||B||_F^2 = D m^2 / ||B||_F^2 (0 if B = 0)
};

// One (4D x 4D) matrix as a grid of D x D blocks; blocks[a][b] is rows aD.., columns bD...
struct BlockGrid {
  std::array<std::array<BlockStats, kTokenSlots>, kTokenSlots> blocks{};
  double total_energy = 0.0;  // ||M||_F^2
  // sum_{a,b} sum_j M[a][b]_jj^2 / ||M||_F^2: the "identity-structured" energy, 1 exactly
  // when every block is diagonal.
  double diagonal_energy_fraction = 0.0;
  // sum_{a,b} D m_ab^2 / ||M||_F^2: the share captured by the block-scalar approximation
  // sum_{a,b} m_ab (E_ab kron I_D), which is the orthogonal projection of M onto that space.
  double identity_energy_fraction = 0.0;
};

// Block statistics of m (4 dim x 4 dim).
BlockGrid block_grid(const RowMatrix<double>& m, int dim);

// M_QK = Wq_h Wk_h^T and M_PV = Wv_h P_h of head `head` of layer `layer`, (E x E) each.
// params: the model's parameter buffer (double).
RowMatrix<double> head_qk(const Transformer& model, const double* params, int layer, int head);
RowMatrix<double> head_pv(const Transformer& model, const double* params, int layer, int head);

struct HeadStructure {
  BlockGrid qk;  // rows: query slot, columns: key slot
  BlockGrid pv;  // rows: value slot, columns: output slot
};

struct LayerStructure {
  int layer = 0;
  MixerKind kind = MixerKind::Linear;
  std::vector<HeadStructure> heads;
};

// Empty if part 1 applies to the model: tokens without an embedding, E = 4 D, and every
// layer linear or softmax attention (mesa layers use q, k, v differently). Otherwise the
// reason, for an error message.
std::string structure_ineligibility(const ModelConfig& model);

// Part 1 for every layer and head. Throws Error if structure_ineligibility is not empty.
std::vector<LayerStructure> weight_structure(const Transformer& model, const double* params);

// The RevAlg-1 scalars of one head: qk[a][b] of M_QK and pv[c] of block (c, 0) of M_PV.
struct RevAlgHead {
  std::array<std::array<double, kTokenSlots>, kTokenSlots> qk{};
  std::array<double, kTokenSlots> pv{};
};

std::vector<RevAlgHead> revalg_heads(const LayerStructure& layer);

// w[q][k][v] of the closed form (index 0 = cur: s, 1 = prev: s_{-1}), summed over heads.
using RevAlgCoefficients = std::array<std::array<std::array<double, 2>, 2>, 2>;
// masked_inputs: tokens [0, 0, s_t, s_{t-1}] (TokenFormat::ConstructedMasked), whose slot 1
// is zero and drops out of the sums.
RevAlgCoefficients revalg_coefficients(const std::vector<RevAlgHead>& heads,
                                       bool masked_inputs = false);

// Closed-form predictions pred_t = clip(sum_{q,k,v} w[q][k][v] x_q(t)^T C_kv(t)) for
// t = 1..T, where clip clamps to [-clip, clip] (no clipping if clip <= 0), as the model's
// residual clip acts on the readout channels. states: (B, T + 1, D); returns (B, T, D).
std::vector<double> revalg_predictions(const RevAlgCoefficients& w, const double* states, int batch,
                                       int seq_len, int dim, double clip);

// loss_t = sum_b |pred_t - s_{t+1}|^2 / (2B) of revalg_predictions.
std::vector<double> revalg_curve(const RevAlgCoefficients& w, const double* states, int batch,
                                 int seq_len, int dim, double clip);

// The best coefficients of the closed-form class: w minimising sum_{b,t} |pred_t - s_{t+1}|^2
// (without clipping) on states (B, T + 1, D). pred is linear in the 8 values w[q][k][v] (features
// x_q(t)^T C_kv(t)), so this is one 8-dimensional linear regression, solved through its normal
// equations accumulated in a fixed order. It bounds what a 1-layer LSA with block-scalar
// weights can reach. Throws Error if the normal equations are singular.
RevAlgCoefficients fit_revalg_coefficients(const double* states, int batch, int seq_len, int dim);

// GD-1 with the model's activation clip: eta minimising
//   sum_{b,t} |clip(eta g_t) - s_{t+1}|^2,  g_t = sum_{i<=t} (s_t . s_{i-1}) s_i,
// on states (B, T + 1, D); clip(.) clamps to [-clip, clip] elementwise, as the residual clip
// acts on a 1-layer model's readout. The loss is not quadratic in eta any more, so: a grid of
// 81 points over [0, 4 eta_0] (eta_0 = tune_gd_eta, the unclipped optimum), widened 4x (at most
// 8 times) while its last point is the best, then golden-section refinement around the best
// grid point. A clip so small that the loss keeps falling as eta grows yields the widest grid's
// end. Equals tune_gd_eta for clip <= 0.
double tune_clipped_gd_eta(const double* states, int batch, int seq_len, int dim, double clip);

// "GD-1 plus a learned linear term":
//   pred_t^T = s_t^T (W0 + eta sum_{i<=t} s_{i-1} s_i^T) = s_t^T W0 + eta g_t^T,
// in the row convention (W0 maps the row s_t^T; the column-form transition W of SPEC.md
// corresponds to W0 = W^T). g_t is GD-1's direction, so (eta, W0 = 0) is GD-1. This is not one
// GD step from W0 (that has the extra term -eta s_t^T C_pp(t) W0): see analysis/gd_step.hpp.
struct GdW0Fit {
  double eta = 0.0;
  int dim = 0;
  std::vector<double> w0;  // (D, D) row-major
};

// The least-squares (eta, W0) minimising sum_{b,t} |pred_t - s_{t+1}|^2 (the mean over t of
// the per-step loss) on states (B, T + 1, D). pred is linear in theta = (eta, W0), so this is
// one linear regression; it is solved through its (D^2 + 1)-dimensional normal equations,
//   [ sum |g|^2         sum g_d s^T ] [eta    ]   [ sum g . y  ]
//   [ sum s g_d    I_D kron S       ] [W0[:,d]] = [ sum s y_d  ],   S = sum s_t s_t^T,
// accumulated in a fixed order. Throws Error if they are singular (e.g. T < 2).
GdW0Fit fit_gd_w0(const double* states, int batch, int seq_len, int dim);

// Per-step loss of the fitted model on states (B, T + 1, D).
std::vector<double> gd_w0_curve(const GdW0Fit& fit, const double* states, int batch, int seq_len,
                                int dim);

// Empty if part 2 applies: one linear-attention layer on constructed tokens, no LayerNorm,
// MLP or embedding. Otherwise the reason.
std::string closed_form_ineligibility(const RunConfig& cfg);

struct ClosedFormComparison {
  std::vector<RevAlgHead> heads;
  RevAlgCoefficients coefficients{};  // extracted from the trained weights
  RevAlgCoefficients fitted{};        // fit_revalg_coefficients on the held-out sequences
  double gd_eta = 0.0;                // GD-1's eta (baselines: tuned on held-out sequences)
  double gd_eta_clipped = 0.0;        // tune_clipped_gd_eta with the model's clip_act, held out
  GdW0Fit gd_w0;                      // fitted on the same held-out sequences
  GdStepFit gd_step;                  // one GD step from a learned W0, the same sequences
  // (name, per-t curve) in the order model, revalg1, revalg1_unclipped, revalg1_fitted, gd1,
  // gd1_clipped, gd_w0, gd_step_w0, least_squares, least_squares_all_pairs, zero, copy. Every
  // closed form is scored with the model's clip except revalg1_unclipped, gd1, gd_w0 and
  // gd_step_w0.
  std::vector<std::pair<std::string, std::vector<double>>> curves;
};

// Part 2 on the run's fixed test set (make_test_set with train.seed, test_batches and
// test_batch_size, exactly as eval and the baselines); GD's eta and (eta, W0) are fitted on
// 512 held-out sequences (RngPurpose::Tuning, step 0), and so are the fitted RevAlg-1
// coefficients. Throws Error if
// closed_form_ineligibility(cfg) is not empty. params: the checkpoint's (float) parameters.
ClosedFormComparison compare_closed_form(const RunConfig& cfg, const Transformer& model,
                                         const std::vector<float>& params,
                                         const LayerStructure& layer0);

struct RevAlgReport {
  std::vector<LayerStructure> structure;
  bool has_comparison = false;
  ClosedFormComparison comparison;  // valid if has_comparison
  std::string comparison_note;      // why there is no comparison (empty if there is)
};

// Part 1, and part 2 when it applies. Throws Error if part 1 does not apply.
RevAlgReport analyse_revalg(const RunConfig& cfg, const std::vector<float>& params);

// {"data_dim", "structure": [{"layer", "kind", "heads": [{"qk": grid, "pv": grid}]}],
//  "closed_form": {...} or null, "closed_form_note": string}, where a grid is
// {"scalars", "energy_share", "diag_fraction", "identity_fraction": 4x4 arrays,
//  "total_energy", "diagonal_energy_fraction", "identity_energy_fraction"}.
nlohmann::json revalg_report_json(const RevAlgReport& report, int data_dim);

}  // namespace mesalab
