#pragma once
// Sequence generators of the paper (SPEC.md "Data: linear sequences", SPEC_EXPERIMENTS.md 1a-1d).
// Hidden states s_1..s_{T+1} in R^D follow one of four dynamics:
// - Linear (main setting): per sequence a Haar-random orthogonal W, s_1 ~ U[-r, r]^D and
//   s_{k+1} = clip(W s_k + sigma * N(0, I), +-clip);
// - Contracting (1a): the same recursion with W = G diag(lambda) G^{-1}, G Gaussian, real
//   eigenvalues lambda in [min_eig, max_eig];
// - Nonlinear (1b): s_{k+1} = W phi(s_k) + sigma * N(0, I) with a fixed random MLP feature map;
// - Fixed (1c): the linear recursion with ONE Haar W shared by every sequence and call.
// Linear, Contracting and Fixed may be observed through o_t = C s_t + sigma_o * n_t (1d).
// Every sequence is a pure function of one counter-based Rng stream, so a batch is a pure
// function of (seed, purpose, step) and bit-identical for any number of threads. The
// arithmetic is plain loops in a fixed order and the file is compiled without FMA
// contraction, so a sequence has the same bits in every build (portable, native, sanitized).
#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/parallel.hpp"
#include "core/rng.hpp"

namespace mesalab {

// Version of the generator's bits, stored in checkpoints so that a run is never resumed on
// other data than it started with. 1: QR by Eigen's Householder (bits depended on the build);
// 2: Gram-Schmidt QR and Gauss-Jordan inverse in plain loops, no FMA contraction.
inline constexpr int kDataGeneratorVersion = 2;

enum class DynamicsKind { Linear, Contracting, Nonlinear, Fixed };

// "linear", "contracting", "nonlinear", "fixed".
std::string_view dynamics_name(DynamicsKind kind);
// Inverse of dynamics_name; an unknown name throws Error listing the allowed names.
DynamicsKind parse_dynamics(std::string_view name);

struct DataConfig {
  int dim = 10;             // D
  int seq_len = 50;         // T: a sequence holds T + 1 states (T inputs, T labels)
  double noise_std = 0.01;  // sigma of the transition noise
  double state_clip = 10.0;
  double init_range = 1.0;  // r in s_1 ~ U[-r, r]^D
  DynamicsKind kind = DynamicsKind::Linear;
  // Contracting: eigenvalue range of W (the paper's defaults).
  double min_eig = 0.3;
  double max_eig = 0.9;
  // Nonlinear: hidden width Dh of the feature MLP (0 means 4 D) and the seed of its weights,
  // which is independent of the training seed so that every run sees the same map.
  int nonlinear_hidden = 0;
  uint64_t nonlinear_seed = 42;
  // Fixed: seed of the one shared transition matrix (the official code uses PRNGKey(42)).
  uint64_t fixed_w_seed = 42;
  // Observation model: obs_dim = 0 means none (observations are the hidden states).
  // eye_obs uses C = I (needs obs_dim == D); otherwise C ~ 0.5 N(0, 1)^{obs_dim x D} per
  // sequence. noise_obs is the std of the observation noise.
  int obs_dim = 0;
  bool eye_obs = false;
  double noise_obs = 0.0;
};

// Throws Error (bad input) naming the field as data.<field> when a value is out of range or
// fields contradict each other.
void validate(const DataConfig& cfg);

// Dimension of the observations: obs_dim, or D without an observation model.
int observed_dim(const DataConfig& cfg);

// Hidden width Dh of the nonlinear feature MLP: nonlinear_hidden, or 4 D when it is 0 (the
// usual transformer MLP ratio; the official code leaves Dh to the caller).
int nonlinear_hidden_dim(const DataConfig& cfg);

// Haar-uniform orthogonal matrix, w: (D, D) row-major.
// G ~ N(0, 1)^{D x D} (row-major draws), G = Q R with R_jj > 0, W = Q.
// The positive diagonal makes the factorisation unique, which is what makes W Haar-distributed
// (Mezzadri 2007); a QR routine with another sign convention would need W = Q diag(sign R_jj).
void sample_haar_orthogonal(int dim, Rng& rng, double* w);

// Contracting transition matrix (SPEC_EXPERIMENTS 1a), w: (D, D) row-major.
// G ~ N(0, 1)^{D x D} (redrawn from the same stream while 1/(||G||_1 ||G^{-1}||_1) <= 1e-10),
// lambda_1..lambda_{D-1} ~ U[min_eig, max_eig], lambda_D = max_eig, lambda randomly permuted,
// W = G diag(lambda) G^{-1}.
// W has real eigenvalues lambda and is in general not normal. Draw order: G (D*D normals,
// row-major), D - 1 uniforms for lambda, D - 1 uniforms for the Fisher-Yates permutation.
void sample_contracting_transition(int dim, double min_eig, double max_eig, Rng& rng, double* w);

// The Fixed kind's shared transition: W ~ Haar O(D) from Rng{fixed_w_seed, FixedTransition},
// (D, D) row-major; identical for every sequence, step and training seed.
std::vector<double> fixed_transition(const DataConfig& cfg);

// The fixed feature MLP of the Nonlinear kind, f(x) = gelu(x A) B for a row vector x:
// a: (D, Dh) row-major with A_ij ~ N(0, 1/D), from Rng{nonlinear_seed, NonlinearMlp, 0};
// b: (Dh, D) row-major with B_ij ~ N(0, 1/Dh), from Rng{nonlinear_seed, NonlinearMlp, 1}.
// The 1/fan-in variances keep x A and gelu(x A) B of order |x| for any D and Dh.
struct NonlinearFeatures {
  int dim = 0;     // D
  int hidden = 0;  // Dh
  std::vector<double> a;
  std::vector<double> b;
};
NonlinearFeatures nonlinear_features(const DataConfig& cfg);

// For one state x in R^D:
//   f(x) = gelu(x A) B,  gelu(u) = u/2 (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))),
//   phi(x) = f(x) / (||f(x)||_2 + 1e-16).
// gelu is the tanh approximation (JAX's default). f_out and phi_out are (D) and may be null.
void nonlinear_feature_map(const NonlinearFeatures& features, const double* x, double* f_out,
                           double* phi_out);

// The parts of the dynamics shared by all sequences of a config: the nonlinear MLP (Nonlinear
// kind only) and the fixed W (Fixed kind only); the other members stay empty. Computing them
// once per batch keeps the per-sequence work free of redundant draws.
struct SharedDynamics {
  NonlinearFeatures features;
  std::vector<double> fixed_w;
};
SharedDynamics shared_dynamics(const DataConfig& cfg);

// One sequence of any kind. hidden: (T + 1, D); observed: (T + 1, observed_dim(cfg)), may be
// null; without an observation model it receives a copy of hidden. `shared` must come from
// shared_dynamics(cfg).
// Draw order inside the stream (later draws never shift earlier ones):
//   Linear, Nonlinear: W (D*D normals), s_1 (D uniforms), transition noise (T * D normals);
//   Contracting: W (see sample_contracting_transition), s_1, transition noise;
//   Fixed: s_1, transition noise;
//   then, with an observation model: C (obs_dim*D normals, unless eye_obs) and, when
//   noise_obs > 0, the observation noise ((T + 1) * obs_dim normals, time-major).
// Recursions (n_k, m_t ~ N(0, I) i.i.d.):
//   Linear, Contracting, Fixed: s_{k+1} = clip(W s_k + sigma n_k, -c, c);
//   Nonlinear:                  s_{k+1} = W phi(s_k) + sigma n_k (no clipping);
//   observations:               o_t = C s_t + sigma_o m_t, t = 1..T+1.
// One noise draw per state means the label at t (o_{t+1}) and the input at t + 1 share noise.
// If w_out is not null the transition matrix (D, D) is written there; if c_out is not null
// and there is an observation model, C (obs_dim, D) is written there (row-major).
void sample_sequence(const DataConfig& cfg, const SharedDynamics& shared, Rng& rng, double* hidden,
                     double* observed, double* w_out = nullptr, double* c_out = nullptr);

// sample_sequence for many sequences of one config: validates once and keeps its scratch
// (W, C, the contracting inverse, the feature buffers), so a sequence allocates nothing.
// `shared` must come from shared_dynamics(cfg) and outlive the sampler. One per thread.
class SequenceSampler {
 public:
  SequenceSampler(const DataConfig& cfg, const SharedDynamics& shared);
  // Same contract and bits as sample_sequence.
  void sample(Rng& rng, double* hidden, double* observed, double* w_out = nullptr,
              double* c_out = nullptr);

 private:
  void run_nonlinear_recursion(Rng& rng, double* states);

  DataConfig cfg_;
  const SharedDynamics& shared_;
  std::vector<double> w_, c_, observed_;          // W (D, D), C (obs_dim, D), unrequested o
  std::vector<double> g_, work_, inv_, lambda_;   // Contracting: G, elimination, G^{-1}
  std::vector<double> feature_hidden_, f_, phi_;  // Nonlinear: gelu(x A), f, phi
};

// The stream of sequence b of the batch (seed, purpose, step): every sequence has its own.
inline Rng sequence_rng(uint64_t seed, RngPurpose purpose, uint64_t step, int b) {
  return Rng{seed, uint64_t(purpose), step, uint64_t(b)};
}

// Calls fn(first, count) for consecutive blocks of at most 8 sequences of a batch, in
// parallel. Blocks only amortise per-thread scratch: each sequence depends on its own stream
// alone, so the result does not depend on the block size or the thread count.
template <class Fn>
void for_each_sequence_block(int batch, Fn&& fn) {
  constexpr int kBlock = 8;
  parallel_for((batch + kBlock - 1) / kBlock, [&](int block) {
    const int first = block * kBlock;
    fn(first, std::min(kBlock, batch - first));
  });
}

// The Linear kind's hidden states, states: (T + 1, D) row-major; bit-identical to
// sample_sequence's hidden states for a Linear config. Throws if cfg.kind is not Linear; the
// observation fields are ignored. Draw order: W (D*D normals), s_1 (D uniforms), then the
// noise of each transition. If w_out is not null the transition matrix (D, D) row-major is
// written there, so tests can check the residual noise.
// s_1 ~ U[-r, r]^D,  s_{k+1} = clip(W s_k + sigma * n_k, -c, c),  n_k ~ N(0, I_D).
void sample_linear_sequence(const DataConfig& cfg, Rng& rng, double* states,
                            double* w_out = nullptr);

// A batch: observed (B, T + 1, obs_dim) and hidden (B, T + 1, D), row-major. Without an
// observation model obs_dim = D and observed == hidden.
struct SequenceBatch {
  int batch = 0;
  int seq_len = 0;
  int dim = 0;
  int obs_dim = 0;
  std::vector<double> observed;
  std::vector<double> hidden;
};

// Sequence b uses sequence_rng(seed, purpose, step, b), hence the result does not depend on
// the thread count.
SequenceBatch sample_sequences(const DataConfig& cfg, uint64_t seed, RngPurpose purpose,
                               uint64_t step, int batch);

// The observed states of sample_sequences, (B, T + 1, observed_dim(cfg)) row-major. For the
// default config these are the linear hidden states.
std::vector<double> sample_states(const DataConfig& cfg, uint64_t seed, RngPurpose purpose,
                                  uint64_t step, int batch);

}  // namespace mesalab
