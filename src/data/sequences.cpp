#include "data/sequences.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "core/error.hpp"
#include "core/parallel.hpp"

namespace mesalab {

namespace {

constexpr DynamicsKind kAllKinds[] = {DynamicsKind::Linear, DynamicsKind::Contracting,
                                      DynamicsKind::Nonlinear, DynamicsKind::Fixed};

// G with a reciprocal condition number below this is treated as singular: its inverse would
// carry no correct digits worth speaking of, and such a draw has probability ~1e-9 for D = 10.
constexpr double kMinRcond = 1e-10;

// Added to ||f(x)|| before dividing, as in the official generator, so that f(x) = 0 maps to 0.
constexpr double kNormEps = 1e-16;

// gelu(u) = u/2 (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))), the tanh approximation.
double gelu_tanh(double u) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * u * (1.0 + std::tanh(k * (u + 0.044715 * u * u * u)));
}

// next = clip(W s + sigma n, -c, c) for every transition k = 1..T, with s_1 drawn first:
// s_1 ~ U[-r, r]^D, then D normals per transition.
void run_linear_recursion(const DataConfig& cfg, const double* w, Rng& rng, double* states) {
  const int d = cfg.dim;
  for (int i = 0; i < d; ++i) states[i] = rng.uniform(-cfg.init_range, cfg.init_range);
  for (int k = 0; k < cfg.seq_len; ++k) {
    const double* s = states + size_t(k) * d;
    double* next = states + size_t(k + 1) * d;
    for (int i = 0; i < d; ++i) {
      double acc = 0.0;
      const double* w_row = w + size_t(i) * d;
      for (int j = 0; j < d; ++j) acc += w_row[j] * s[j];
      acc += cfg.noise_std * rng.normal();
      next[i] = std::clamp(acc, -cfg.state_clip, cfg.state_clip);
    }
  }
}

// f = gelu(x A) B and phi = f / (||f|| + eps); `hidden` is scratch of size Dh.
void feature_map(const NonlinearFeatures& nf, const double* x, double* hidden, double* f,
                 double* phi) {
  const int d = nf.dim;
  const int h = nf.hidden;
  for (int j = 0; j < h; ++j) hidden[j] = 0.0;
  for (int i = 0; i < d; ++i) {
    const double* a_row = nf.a.data() + size_t(i) * h;
    for (int j = 0; j < h; ++j) hidden[j] += x[i] * a_row[j];
  }
  for (int j = 0; j < h; ++j) hidden[j] = gelu_tanh(hidden[j]);
  for (int k = 0; k < d; ++k) f[k] = 0.0;
  for (int j = 0; j < h; ++j) {
    const double* b_row = nf.b.data() + size_t(j) * d;
    for (int k = 0; k < d; ++k) f[k] += hidden[j] * b_row[k];
  }
  double sq = 0.0;
  for (int k = 0; k < d; ++k) sq += f[k] * f[k];
  const double scale = 1.0 / (std::sqrt(sq) + kNormEps);
  for (int k = 0; k < d; ++k) phi[k] = f[k] * scale;
}

// o_t = C s_t + sigma_o m_t for t = 1..T+1; C (into c, obs_dim x D) and then (if sigma_o > 0)
// m are drawn here.
void observe(const DataConfig& cfg, Rng& rng, const double* hidden, double* observed, double* c) {
  const int d = cfg.dim;
  const int m = cfg.obs_dim;
  std::fill(c, c + size_t(m) * d, 0.0);
  if (cfg.eye_obs) {
    for (int i = 0; i < m; ++i) c[size_t(i) * d + i] = 1.0;
  } else {
    for (size_t i = 0; i < size_t(m) * d; ++i) c[i] = 0.5 * rng.normal();
  }
  for (int t = 0; t <= cfg.seq_len; ++t) {
    const double* s = hidden + size_t(t) * d;
    double* o = observed + size_t(t) * m;
    for (int i = 0; i < m; ++i) {
      double acc = 0.0;
      const double* c_row = c + size_t(i) * d;
      for (int j = 0; j < d; ++j) acc += c_row[j] * s[j];
      o[i] = acc;
    }
    // Skipping the draws when sigma_o = 0 changes nothing else: they come last in the stream.
    if (cfg.noise_obs > 0.0) {
      for (int i = 0; i < m; ++i) o[i] += cfg.noise_obs * rng.normal();
    }
  }
}

// inv = G^{-1} (D x D, row-major) by Gauss-Jordan elimination with partial pivoting on
// [G | I], using `work` (D x D) for the eliminated copy of G. Returns the exact reciprocal
// condition number 1 / (||G||_1 ||G^{-1}||_1), or 0 if a pivot vanishes.
double invert_with_rcond(int dim, const double* g, double* work, double* inv) {
  const size_t d = size_t(dim);
  std::copy(g, g + d * d, work);
  for (size_t i = 0; i < d * d; ++i) inv[i] = 0.0;
  for (size_t i = 0; i < d; ++i) inv[i * d + i] = 1.0;
  for (size_t c = 0; c < d; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < d; ++r)
      if (std::abs(work[r * d + c]) > std::abs(work[pivot * d + c])) pivot = r;
    if (work[pivot * d + c] == 0.0) return 0.0;
    for (size_t j = 0; j < d; ++j) {
      std::swap(work[pivot * d + j], work[c * d + j]);
      std::swap(inv[pivot * d + j], inv[c * d + j]);
    }
    const double scale = 1.0 / work[c * d + c];
    for (size_t j = 0; j < d; ++j) {
      work[c * d + j] *= scale;
      inv[c * d + j] *= scale;
    }
    for (size_t r = 0; r < d; ++r) {
      const double factor = work[r * d + c];
      if (r == c || factor == 0.0) continue;
      for (size_t j = 0; j < d; ++j) {
        work[r * d + j] -= factor * work[c * d + j];
        inv[r * d + j] -= factor * inv[c * d + j];
      }
    }
  }
  auto norm1 = [d](const double* a) {
    double largest = 0.0;
    for (size_t j = 0; j < d; ++j) {
      double column = 0.0;
      for (size_t i = 0; i < d; ++i) column += std::abs(a[i * d + j]);
      largest = std::max(largest, column);
    }
    return largest;
  };
  const double product = norm1(g) * norm1(inv);
  return std::isfinite(product) && product > 0.0 ? 1.0 / product : 0.0;
}

void check_shared(const DataConfig& cfg, const SharedDynamics& shared) {
  const size_t dd = size_t(cfg.dim) * cfg.dim;
  if (cfg.kind == DynamicsKind::Fixed && shared.fixed_w.size() != dd) {
    fail("sample_sequence: shared dynamics lack the fixed W for dim {}", cfg.dim);
  }
  if (cfg.kind == DynamicsKind::Nonlinear &&
      (shared.features.dim != cfg.dim || shared.features.hidden != nonlinear_hidden_dim(cfg) ||
       shared.features.a.size() != size_t(cfg.dim) * shared.features.hidden ||
       shared.features.b.size() != size_t(cfg.dim) * shared.features.hidden)) {
    fail("sample_sequence: shared dynamics do not hold the nonlinear features of this config");
  }
}

}  // namespace

std::string_view dynamics_name(DynamicsKind kind) {
  switch (kind) {
    case DynamicsKind::Linear:
      return "linear";
    case DynamicsKind::Contracting:
      return "contracting";
    case DynamicsKind::Nonlinear:
      return "nonlinear";
    case DynamicsKind::Fixed:
      return "fixed";
  }
  fail("dynamics_name: invalid DynamicsKind value {}", int(kind));
}

DynamicsKind parse_dynamics(std::string_view name) {
  for (DynamicsKind kind : kAllKinds) {
    if (dynamics_name(kind) == name) return kind;
  }
  fail("unknown dynamics kind '{}' (data.kind); allowed: linear, contracting, nonlinear, fixed",
       name);
}

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
  if (std::find(std::begin(kAllKinds), std::end(kAllKinds), cfg.kind) == std::end(kAllKinds)) {
    fail("data.kind has the invalid value {}", int(cfg.kind));
  }
  if (!std::isfinite(cfg.min_eig)) fail("data.min_eig must be finite, got {}", cfg.min_eig);
  if (!std::isfinite(cfg.max_eig)) fail("data.max_eig must be finite, got {}", cfg.max_eig);
  if (!(cfg.min_eig <= cfg.max_eig)) {
    fail("data.min_eig must be <= data.max_eig, got {} > {}", cfg.min_eig, cfg.max_eig);
  }
  if (cfg.nonlinear_hidden < 0) {
    fail("data.nonlinear_hidden must be >= 0 (0 means 4 * dim), got {}", cfg.nonlinear_hidden);
  }
  if (cfg.obs_dim < 0)
    fail("data.obs_dim must be >= 0 (0 = no observation model), got {}", cfg.obs_dim);
  if (cfg.eye_obs && cfg.obs_dim != cfg.dim) {
    fail("data.eye_obs requires data.obs_dim == data.dim ({}), got data.obs_dim = {}", cfg.dim,
         cfg.obs_dim);
  }
  if (!(cfg.noise_obs >= 0.0) || !std::isfinite(cfg.noise_obs)) {
    fail("data.noise_obs must be finite and >= 0, got {}", cfg.noise_obs);
  }
  if (cfg.noise_obs > 0.0 && cfg.obs_dim == 0) {
    fail("data.noise_obs = {} needs an observation model: set data.obs_dim > 0", cfg.noise_obs);
  }
  if (cfg.kind == DynamicsKind::Nonlinear && cfg.obs_dim != 0) {
    fail("data.obs_dim must be 0 for data.kind = nonlinear (it has no observation model), got {}",
         cfg.obs_dim);
  }
}

int observed_dim(const DataConfig& cfg) { return cfg.obs_dim > 0 ? cfg.obs_dim : cfg.dim; }

int nonlinear_hidden_dim(const DataConfig& cfg) {
  return cfg.nonlinear_hidden > 0 ? cfg.nonlinear_hidden : 4 * cfg.dim;
}

// G_ij ~ N(0, 1), then the columns of G orthonormalised in place: W = Q of G = Q R with
// R_jj > 0. Modified Gram-Schmidt run twice per column ("twice is enough": the second pass
// removes what rounding left of the earlier directions), so W is orthogonal to working
// precision. A positive diagonal of R makes the factorisation unique, which is what makes W
// Haar-distributed (Mezzadri 2007). Plain loops in a fixed order: the same bits in every build.
void sample_haar_orthogonal(int dim, Rng& rng, double* w) {
  if (dim < 1) fail("sample_haar_orthogonal: dim must be >= 1, got {}", dim);
  const size_t d = size_t(dim);
  for (size_t i = 0; i < d * d; ++i) w[i] = rng.normal();
  for (size_t j = 0; j < d; ++j) {
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t k = 0; k < j; ++k) {
        double dot = 0.0;
        for (size_t i = 0; i < d; ++i) dot += w[i * d + k] * w[i * d + j];
        for (size_t i = 0; i < d; ++i) w[i * d + j] -= dot * w[i * d + k];
      }
    }
    double sq = 0.0;
    for (size_t i = 0; i < d; ++i) sq += w[i * d + j] * w[i * d + j];
    // A Gaussian G is singular with probability zero; say so rather than divide by zero.
    if (!(sq > 0.0)) fail_runtime("sample_haar_orthogonal: drew a singular Gaussian matrix");
    const double scale = 1.0 / std::sqrt(sq);
    for (size_t i = 0; i < d; ++i) w[i * d + j] *= scale;
  }
}

// W = G diag(pi(lambda)) G^{-1}, lambda = (U[min, max]^{D-1}, max), pi a uniform permutation.
void contracting_transition(int dim, double min_eig, double max_eig, Rng& rng, double* g,
                            double* work, double* inv, double* lambda, double* w) {
  const size_t d = size_t(dim);
  do {
    for (size_t i = 0; i < d * d; ++i) g[i] = rng.normal();
  } while (!(invert_with_rcond(dim, g, work, inv) > kMinRcond));
  for (size_t i = 0; i + 1 < d; ++i) lambda[i] = rng.uniform(min_eig, max_eig);
  lambda[d - 1] = max_eig;
  // Fisher-Yates with our own uniforms: std::shuffle's draws are implementation-defined.
  for (size_t i = d - 1; i > 0; --i) {
    // uniform() * (i + 1) can round up to i + 1, hence the clamp.
    const size_t j = std::min(size_t(rng.uniform() * double(i + 1)), i);
    std::swap(lambda[i], lambda[j]);
  }
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = 0; j < d; ++j) {
      double acc = 0.0;
      for (size_t k = 0; k < d; ++k) acc += g[i * d + k] * lambda[k] * inv[k * d + j];
      w[i * d + j] = acc;
    }
  }
}

void sample_contracting_transition(int dim, double min_eig, double max_eig, Rng& rng, double* w) {
  if (dim < 1) fail("sample_contracting_transition: dim must be >= 1, got {}", dim);
  const size_t d = static_cast<size_t>(dim);
  std::vector<double> g(d * d), work(d * d), inv(d * d), lambda(d);
  contracting_transition(dim, min_eig, max_eig, rng, g.data(), work.data(), inv.data(),
                         lambda.data(), w);
}

std::vector<double> fixed_transition(const DataConfig& cfg) {
  validate(cfg);
  std::vector<double> w(size_t(cfg.dim) * cfg.dim);
  Rng rng{cfg.fixed_w_seed, uint64_t(RngPurpose::FixedTransition)};
  sample_haar_orthogonal(cfg.dim, rng, w.data());
  return w;
}

// A_ij = z / sqrt(D), B_ij = z' / sqrt(Dh), z, z' ~ N(0, 1) from two seed-keyed streams.
NonlinearFeatures nonlinear_features(const DataConfig& cfg) {
  validate(cfg);
  NonlinearFeatures nf;
  nf.dim = cfg.dim;
  nf.hidden = nonlinear_hidden_dim(cfg);
  const size_t n = size_t(nf.dim) * nf.hidden;
  nf.a.resize(n);
  nf.b.resize(n);
  Rng rng_a{cfg.nonlinear_seed, uint64_t(RngPurpose::NonlinearMlp), 0};
  Rng rng_b{cfg.nonlinear_seed, uint64_t(RngPurpose::NonlinearMlp), 1};
  const double scale_a = 1.0 / std::sqrt(double(nf.dim));
  const double scale_b = 1.0 / std::sqrt(double(nf.hidden));
  for (double& x : nf.a) x = scale_a * rng_a.normal();
  for (double& x : nf.b) x = scale_b * rng_b.normal();
  return nf;
}

// f = gelu(x A) B,  phi = f / (||f||_2 + 1e-16).
void nonlinear_feature_map(const NonlinearFeatures& features, const double* x, double* f_out,
                           double* phi_out) {
  if (features.dim < 1 || features.hidden < 1 ||
      features.a.size() != size_t(features.dim) * features.hidden ||
      features.b.size() != size_t(features.dim) * features.hidden) {
    fail("nonlinear_feature_map: malformed features (dim {}, hidden {})", features.dim,
         features.hidden);
  }
  std::vector<double> hidden(size_t(features.hidden));
  std::vector<double> f(size_t(features.dim));
  std::vector<double> phi(size_t(features.dim));
  feature_map(features, x, hidden.data(), f.data(), phi.data());
  if (f_out != nullptr) std::copy(f.begin(), f.end(), f_out);
  if (phi_out != nullptr) std::copy(phi.begin(), phi.end(), phi_out);
}

SharedDynamics shared_dynamics(const DataConfig& cfg) {
  validate(cfg);
  SharedDynamics shared;
  if (cfg.kind == DynamicsKind::Nonlinear) shared.features = nonlinear_features(cfg);
  if (cfg.kind == DynamicsKind::Fixed) shared.fixed_w = fixed_transition(cfg);
  return shared;
}

SequenceSampler::SequenceSampler(const DataConfig& cfg, const SharedDynamics& shared)
    : cfg_(cfg), shared_(shared) {
  validate(cfg);
  check_shared(cfg, shared);
  const size_t d = size_t(cfg.dim);
  w_.resize(d * d);
  if (cfg.kind == DynamicsKind::Contracting) {
    g_.resize(d * d);
    work_.resize(d * d);
    inv_.resize(d * d);
    lambda_.resize(d);
  }
  if (cfg.kind == DynamicsKind::Nonlinear) {
    feature_hidden_.resize(size_t(shared.features.hidden));
    f_.resize(d);
    phi_.resize(d);
  }
  if (cfg.obs_dim > 0) {
    c_.resize(size_t(cfg.obs_dim) * d);
    observed_.resize(size_t(cfg.seq_len + 1) * cfg.obs_dim);
  }
}

// s_1 ~ U[-r, r]^D,  s_{k+1} = W phi(s_k) + sigma n_k.
void SequenceSampler::run_nonlinear_recursion(Rng& rng, double* states) {
  const int d = cfg_.dim;
  for (int i = 0; i < d; ++i) states[i] = rng.uniform(-cfg_.init_range, cfg_.init_range);
  for (int k = 0; k < cfg_.seq_len; ++k) {
    feature_map(shared_.features, states + size_t(k) * d, feature_hidden_.data(), f_.data(),
                phi_.data());
    double* next = states + size_t(k + 1) * d;
    for (int i = 0; i < d; ++i) {
      double acc = 0.0;
      const double* w_row = w_.data() + size_t(i) * d;
      for (int j = 0; j < d; ++j) acc += w_row[j] * phi_[size_t(j)];
      next[i] = acc + cfg_.noise_std * rng.normal();
    }
  }
}

void SequenceSampler::sample(Rng& rng, double* hidden, double* observed, double* w_out,
                             double* c_out) {
  const DataConfig& cfg = cfg_;
  const int d = cfg.dim;
  switch (cfg.kind) {
    case DynamicsKind::Linear:
      sample_haar_orthogonal(d, rng, w_.data());
      run_linear_recursion(cfg, w_.data(), rng, hidden);
      break;
    case DynamicsKind::Contracting:
      contracting_transition(d, cfg.min_eig, cfg.max_eig, rng, g_.data(), work_.data(), inv_.data(),
                             lambda_.data(), w_.data());
      run_linear_recursion(cfg, w_.data(), rng, hidden);
      break;
    case DynamicsKind::Nonlinear:
      sample_haar_orthogonal(d, rng, w_.data());
      run_nonlinear_recursion(rng, hidden);
      break;
    case DynamicsKind::Fixed:
      std::copy(shared_.fixed_w.begin(), shared_.fixed_w.end(), w_.begin());
      run_linear_recursion(cfg, w_.data(), rng, hidden);
      break;
  }
  if (w_out != nullptr) std::copy(w_.begin(), w_.end(), w_out);
  if (cfg.obs_dim > 0) {
    // Without an output buffer the draws of C and the noise still happen (into scratch), so
    // c_out is the same with or without it.
    observe(cfg, rng, hidden, observed != nullptr ? observed : observed_.data(), c_.data());
    if (c_out != nullptr) std::copy(c_.begin(), c_.end(), c_out);
  } else if (observed != nullptr) {
    std::copy(hidden, hidden + size_t(cfg.seq_len + 1) * d, observed);
  }
}

void sample_sequence(const DataConfig& cfg, const SharedDynamics& shared, Rng& rng, double* hidden,
                     double* observed, double* w_out, double* c_out) {
  SequenceSampler(cfg, shared).sample(rng, hidden, observed, w_out, c_out);
}

// s_1 ~ U[-r, r]^D,  s_{k+1} = clip(W s_k + sigma * n_k, -c, c).
// The hidden states of sample_sequence, with the observation model switched off (its draws
// come after those of the states, so they would not change them).
void sample_linear_sequence(const DataConfig& cfg, Rng& rng, double* states, double* w_out) {
  if (cfg.kind != DynamicsKind::Linear) {
    fail("sample_linear_sequence: data.kind must be linear, got {}", dynamics_name(cfg.kind));
  }
  DataConfig hidden_only = cfg;
  hidden_only.obs_dim = 0;
  hidden_only.eye_obs = false;
  hidden_only.noise_obs = 0.0;
  sample_sequence(hidden_only, SharedDynamics{}, rng, states, nullptr, w_out);
}

SequenceBatch sample_sequences(const DataConfig& cfg, uint64_t seed, RngPurpose purpose,
                               uint64_t step, int batch) {
  validate(cfg);
  if (batch < 1) fail("sample_sequences: batch must be >= 1, got {}", batch);
  const SharedDynamics shared = shared_dynamics(cfg);
  SequenceBatch out;
  out.batch = batch;
  out.seq_len = cfg.seq_len;
  out.dim = cfg.dim;
  out.obs_dim = observed_dim(cfg);
  const size_t hidden_per_seq = size_t(cfg.seq_len + 1) * cfg.dim;
  const size_t observed_per_seq = size_t(cfg.seq_len + 1) * out.obs_dim;
  out.hidden.resize(size_t(batch) * hidden_per_seq);
  out.observed.resize(size_t(batch) * observed_per_seq);
  // Each sequence owns its Rng stream and its output slices, so the schedule cannot change
  // a single bit of the result.
  for_each_sequence_block(batch, [&](int first, int count) {
    SequenceSampler sampler(cfg, shared);
    for (int b = first; b < first + count; ++b) {
      Rng rng = sequence_rng(seed, purpose, step, b);
      sampler.sample(rng, out.hidden.data() + size_t(b) * hidden_per_seq,
                     out.observed.data() + size_t(b) * observed_per_seq);
    }
  });
  return out;
}

std::vector<double> sample_states(const DataConfig& cfg, uint64_t seed, RngPurpose purpose,
                                  uint64_t step, int batch) {
  validate(cfg);
  if (batch < 1) fail("sample_states: batch must be >= 1, got {}", batch);
  return std::move(sample_sequences(cfg, seed, purpose, step, batch).observed);
}

}  // namespace mesalab
