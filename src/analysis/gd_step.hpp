#pragma once
// One gradient-descent step from a learned initial W0 (row convention, pred_t^T = s_t^T W):
// on the in-context loss L_t(W) = 1/2 sum_{i<=t} |s_{i-1}^T W - s_i^T|^2 (s_0 = 0) the step
//   W_1 = W0 - eta grad L_t(W0) = W0 - eta C_pp(t) W0 + eta C_ps(t),
//   C_pp(t) = sum_{i<=t} s_{i-1} s_{i-1}^T,  C_ps(t) = sum_{i<=t} s_{i-1} s_i^T,
// predicts
//   pred_t^T = s_t^T W_1 = s_t^T (I - eta C_pp(t)) W0 + eta g_t^T,  g_t^T = s_t^T C_ps(t),
// which is GD-1 for W0 = 0. (analysis/revalg.hpp's fit_gd_w0 fits s_t^T W0 + eta g_t^T, which
// lacks the -eta s_t^T C_pp(t) W0 term and is not a GD step unless W0 = 0.) The prediction is
// linear in W0 for fixed eta and in eta for fixed W0; the fit profiles W0 out: for every eta,
// W0(eta) solves a D x D least-squares problem whose normal equations are quadratic in eta in
// a handful of D x D sufficient statistics, so each eta costs O(D^3).
#include <vector>

namespace mesalab {

struct GdStepFit {
  double eta = 0.0;
  int dim = 0;
  std::vector<double> w0;  // (D, D) row-major, maps the row s_t^T
  double loss = 0.0;       // sum_{b,t} |pred - s_{t+1}|^2 / (2 B T) on the fitted states
};

// The (eta, W0) minimising sum_{b,t} |pred_t - s_{t+1}|^2 on states (B, T + 1, D): a grid of
// 101 points over [-eta_0, 4 eta_0] (eta_0 = sum g.y / sum |g|^2, the W0 = 0 optimum), widened
// 4x (at most 8 times) while an end point is best, then golden-section refinement. Throws
// Error if W0's normal equations are singular at every eta (e.g. T < 2).
GdStepFit fit_gd_step(const double* states, int batch, int seq_len, int dim);

// The profiled loss at a given eta (W0 re-fitted), as fit_gd_step minimises it.
GdStepFit fit_gd_step_at(const double* states, int batch, int seq_len, int dim, double eta);

// Per-step loss of the step's predictions on states (B, T + 1, D).
std::vector<double> gd_step_curve(const GdStepFit& fit, const double* states, int batch,
                                  int seq_len, int dim);

}  // namespace mesalab
