#pragma once
// Linear dynamical sequences of the paper's main setting (SPEC.md "Data: linear sequences"):
// per sequence a Haar-random orthogonal W, s_1 ~ U[-r, r]^D and
// s_{k+1} = clip(W s_k + sigma * N(0, I), +-clip).
// Every sequence is a pure function of one counter-based Rng stream, so a batch is a pure
// function of (seed, purpose, step) and bit-identical for any number of threads.
#include <cstdint>
#include <vector>

#include "core/rng.hpp"

namespace mesalab {

struct DataConfig {
  int dim = 10;             // D
  int seq_len = 50;         // T: a sequence holds T + 1 states (T inputs, T labels)
  double noise_std = 0.01;  // sigma of the transition noise
  double state_clip = 10.0;
  double init_range = 1.0;  // r in s_1 ~ U[-r, r]^D
};

// Throws Error (bad input) naming the field when a value is out of range.
void validate(const DataConfig& cfg);

// Haar-uniform orthogonal matrix, w: (D, D) row-major.
// G ~ N(0, 1)^{D x D}, G = Q R (Householder), W = Q diag(sign(diag R)).
// The sign fix makes the factorisation unique, which is what makes W Haar-distributed
// (Mezzadri 2007); without it the law of Q depends on the QR algorithm's sign convention.
void sample_haar_orthogonal(int dim, Rng& rng, double* w);

// One sequence, states: (T + 1, D) row-major. Draw order inside the stream: W (D*D normals),
// s_1 (D uniforms), then the noise of each transition. If w_out is not null the transition
// matrix (D, D) row-major is written there, so tests can check the residual noise.
// s_1 ~ U[-r, r]^D,  s_{k+1} = clip(W s_k + sigma * n_k, -c, c),  n_k ~ N(0, I_D).
void sample_linear_sequence(const DataConfig& cfg, Rng& rng, double* states,
                            double* w_out = nullptr);

// A batch of sequences, (B, T + 1, D) row-major. Sequence b uses
// Rng{seed, uint64_t(purpose), step, b}, hence the result does not depend on thread count.
std::vector<double> sample_states(const DataConfig& cfg, uint64_t seed,
                                         RngPurpose purpose, uint64_t step, int batch);

}  // namespace mesalab
