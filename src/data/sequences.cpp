#include "data/sequences.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace mesalab {

namespace {
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}  // namespace

void validate(const DataConfig& cfg) {
  if (cfg.dim < 1) fail("data.dim must be >= 1, got {}", cfg.dim);
  if (cfg.seq_len < 1) fail("data.seq_len must be >= 1, got {}", cfg.seq_len);
  if (!(cfg.noise_std >= 0.0) || !std::isfinite(cfg.noise_std)) {
    fail("data.noise_std must be finite and >= 0, got {}", cfg.noise_std);
  }
  if (!(cfg.state_clip > 0.0)) fail("data.state_clip must be > 0, got {}", cfg.state_clip);
  if (!(cfg.init_range >= 0.0) || !std::isfinite(cfg.init_range)) {
    fail("data.init_range must be finite and >= 0, got {}", cfg.init_range);
  }
}

// G = Q R with G_ij ~ N(0, 1); W = Q diag(sign(R_jj)).
void sample_haar_orthogonal(int dim, Rng& rng, double* w) {
  if (dim < 1) fail("sample_haar_orthogonal: dim must be >= 1, got {}", dim);
  Eigen::MatrixXd g(dim, dim);
  for (int i = 0; i < dim; ++i) {
    for (int j = 0; j < dim; ++j) g(i, j) = rng.normal();
  }
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  const Eigen::MatrixXd q = qr.householderQ();
  Eigen::Map<RowMatrix> out(w, dim, dim);
  for (int j = 0; j < dim; ++j) {
    // R_jj = 0 has probability zero; treating it as +1 keeps W orthogonal anyway.
    const double sign = qr.matrixQR()(j, j) < 0.0 ? -1.0 : 1.0;
    out.col(j) = sign * q.col(j);
  }
}

// s_1 ~ U[-r, r]^D,  s_{k+1} = clip(W s_k + sigma * n_k, -c, c).
void sample_linear_sequence(const DataConfig& cfg, Rng& rng, double* states, double* w_out) {
  validate(cfg);
  const int d = cfg.dim;
  std::vector<double> w_local;
  double* w = w_out;
  if (w == nullptr) {
    w_local.resize(size_t(d) * d);
    w = w_local.data();
  }
  sample_haar_orthogonal(d, rng, w);
  for (int i = 0; i < d; ++i) states[i] = rng.uniform(-cfg.init_range, cfg.init_range);
  for (int k = 0; k < cfg.seq_len; ++k) {
    const double* s = states + size_t(k) * d;
    double* next = states + size_t(k + 1) * d;
    // A plain loop fixes the order of the floating-point sums, so the bits of a sequence do
    // not depend on which SIMD kernel a library would pick, and it needs no temporaries.
    for (int i = 0; i < d; ++i) {
      double acc = 0.0;
      const double* w_row = w + size_t(i) * d;
      for (int j = 0; j < d; ++j) acc += w_row[j] * s[j];
      acc += cfg.noise_std * rng.normal();
      next[i] = std::clamp(acc, -cfg.state_clip, cfg.state_clip);
    }
  }
}

std::vector<double> sample_states(const DataConfig& cfg, uint64_t seed,
                                         RngPurpose purpose, uint64_t step, int batch) {
  validate(cfg);
  if (batch < 1) fail("sample_states: batch must be >= 1, got {}", batch);
  const size_t per_seq = size_t(cfg.seq_len + 1) * cfg.dim;
  std::vector<double> states(size_t(batch) * per_seq);
  // Each sequence owns its Rng stream and its output slice, so the schedule cannot change
  // a single bit of the result.
#pragma omp parallel for schedule(static)
  for (int b = 0; b < batch; ++b) {
    Rng rng{seed, uint64_t(purpose), step, uint64_t(b)};
    sample_linear_sequence(cfg, rng, states.data() + size_t(b) * per_seq);
  }
  return states;
}

}  // namespace mesalab
