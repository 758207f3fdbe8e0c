#pragma once
// Reference predictors for the next state of a linear sequence (SPEC.md "Baselines"), run on
// the same states the models see. Every *_curve function takes states (B, T + 1, D) row-major
// and returns the per-time-step test loss, one value per t = 1..T (index 0 is t = 1):
//   loss_t = sum_b sum_d (pred_t - s_{t+1})_{b,d}^2 / (2B).
// Sums over the batch run in a fixed order, so curves do not depend on the thread count.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/eigen_maps.hpp"
#include "core/stats.hpp"
#include "data/sequences.hpp"
#include "data/tokens.hpp"

namespace mesalab {

// One sequence's states s_1..s_{T+1}, (T + 1, D) row-major.
using ConstSequence = Eigen::Map<const RowMatrix<double>>;

// GD-1's direction at every step of one sequence, g_t = C_t s_t with
// C_t = sum_{i<t} s_{i+1} s_i^T, i.e. g_t = sum_{i<t} (s_i . s_t) s_{i+1}, t = 1..T (row t-1
// of the (T, D) result): the pair (s_t, s_{t+1}) never informs the prediction at t.
RowMatrix<double> gd_directions(const ConstSequence& seq);

// pred_t = 0.
std::vector<double> zero_predictor_curve(const double* states, int batch, int seq_len, int dim);

// pred_t = s_t.
std::vector<double> copy_predictor_curve(const double* states, int batch, int seq_len, int dim);

// pred_t = W_t s_t with W_t = argmin_W sum_{i<m} |s_{i+1} - W s_i|^2 + ridge |W|_F^2
//        = C_t (A_t + ridge I)^{-1},  A_t = sum_{i<m} s_i s_i^T,  C_t = sum_{i<m} s_{i+1} s_i^T,
// with m = t when include_latest_pair (every pair seen so far, up to (s_{t-1}, s_t), as
// SPEC.md's formula reads), and m = t - 1 otherwise: the official code's
// LeastSquaresSequenceSolver regresses on [0, s_1..s_{t-1}] -> [s_1..s_t] rows < t, which
// leaves out the latest pair (s_{t-1}, s_t); that is the variant behind SPEC's reference
// value 0.2085 ("code wins"). With no pairs the prediction is 0. Requires ridge > 0.
std::vector<double> least_squares_curve(const double* states, int batch, int seq_len, int dim,
                                        double ridge = 1e-3, bool include_latest_pair = false);

// Least squares on features phi_t of the inputs instead of the states themselves:
//   pred_t = C_t (A_t + ridge I)^{-1} phi_t,
//   A_t = sum_{i<m} phi_i phi_i^T,  C_t = sum_{i<m} s_{i+1} phi_i^T,
// with m as in least_squares_curve (the latest pair (phi_{t-1}, s_t) left out unless
// include_latest_pair). features: (B, T, F) row-major, phi_t for t = 1..T; states: (B, T + 1,
// D), whose s_{t+1} are the targets. least_squares_curve is the case phi_t = s_t.
std::vector<double> feature_least_squares_curve(const double* features, int width,
                                                const double* states, int batch, int seq_len,
                                                int dim, double ridge = 1e-3,
                                                bool include_latest_pair = false);

// Partial observations (the official lsq_partobs): features are the delay vectors
// z_t = [o_t, o_{t-1}, ..., o_{t-n+1}, 0] of the delay tokens (build_delay_tokens, n =
// floor(width / m) slots), targets o_{t+1}; the official code regresses z_t on z_{t-1} and
// scores the first m entries of z_t W, which is the same fit column by column.
// observations: (B, T + 1, m).
std::vector<double> delay_least_squares_curve(const double* observations, int batch, int seq_len,
                                              int obs_dim, int width, double ridge = 1e-3);

// Nonlinear data: features phi(s_t) of the generator's own feature map (the true features,
// nonlinear_feature_map), targets s_{t+1}. states: (B, T + 1, D).
std::vector<double> true_feature_least_squares_curve(const NonlinearFeatures& features,
                                                     const double* states, int batch, int seq_len,
                                                     double ridge = 1e-3);

// One gradient step from W_0 = 0 on L(W) = 1/2 sum_{i<t} |s_{i+1} - W s_i|^2:
// W_t = -eta grad L(0) = eta C_t,  pred_t = eta C_t s_t.
std::vector<double> gd1_curve(const double* states, int batch, int seq_len, int dim, double eta);

// eta minimising the mean over t of the GD-1 per-step loss on the given (held-out) states.
// With g_{b,t} = C_t s_t and y_{b,t} = s_{t+1} the loss is a quadratic in eta,
//   mean_t loss_t(eta) = 1/(2BT) sum_{b,t} (eta^2 |g|^2 - 2 eta g.y + |y|^2),
// so the minimiser is eta* = sum_{b,t} g.y / sum_{b,t} |g|^2 (no grid or line search needed).
double tune_gd_eta(const double* states, int batch, int seq_len, int dim);

struct BaselineReport {
  double gd_eta = 0.0;
  // (name, per-t curve) in the order zero, copy, least_squares (official, latest pair left
  // out), least_squares_all_pairs, gd1; then least_squares_delay with an observation model
  // and least_squares_true_features on nonlinear data.
  std::vector<std::pair<std::string, std::vector<double>>> curves;
};

// Tunes eta on one held-out batch of 512 sequences (RngPurpose::Tuning, step 0), then averages
// each baseline's per-t curve over the test set: batches step = 0..test_batches-1 of
// RngPurpose::TestData with this seed. Every baseline sees the observations (of width
// observed_dim(cfg)); delay_width is the delay vector's width of least_squares_delay.
BaselineReport run_baselines(const DataConfig& cfg, uint64_t seed, int test_batches, int batch_size,
                             double ridge = 1e-3, int delay_width = kDelayBaselineWidth);

// {"gd_eta": eta, "baselines": [{"name", "mean_loss", "curve": [T values]}, ...]}.
nlohmann::json baseline_report_json(const BaselineReport& report);

}  // namespace mesalab
