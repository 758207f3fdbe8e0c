#pragma once
// Shared test helpers: fixture loading, nested-list flattening, one comparison harness
// that prints the max abs / rel difference on failure, and the small vector / central
// finite-difference helpers of the kernel tests.
#include <omp.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/transformer.hpp"

namespace mesalab::testing {

// Transformer::forward and squared_error; with grads, also the backward of
// scale * sum (pred - label)^2 / 2 (grads accumulate, grad_tokens is overwritten).
// Returns the sum of squared errors (per token into sq_err_per_token if given).
template <class S>
double forward_backward(const Transformer& model, const S* params, const S* tokens, const S* labels,
                        int batch, Workspace<S>& ws, S* grads = nullptr, S scale = S(1),
                        double* sq_err_per_token = nullptr, S* grad_tokens = nullptr) {
  model.forward(params, tokens, batch, ws);
  const double sq = squared_error(ws, batch, labels, sq_err_per_token);
  if (grads != nullptr) {
    squared_error_gradient(ws, batch, labels, scale, ws.d_pred.data());
    model.backward(params, tokens, batch, ws, ws.d_pred.data(), grads, grad_tokens);
  }
  return sq;
}

// Restores the OpenMP thread count when a test that changes it ends, even on failure.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(omp_get_max_threads()) {}
  ~ThreadCountGuard() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// Parsed tests/fixtures/reference_grads.json (cached after the first call).
const nlohmann::json& reference_fixture();

// Row-major flattening of a nested JSON list of numbers.
std::vector<double> flatten(const nlohmann::json& nested);

struct DiffStats {
  double max_abs = 0.0;
  double max_rel = 0.0;  // |a-b| / max(|a|, |b|, floor)
  size_t worst_index = 0;
};
DiffStats compare(const double* actual, const double* expected, size_t n, double rel_floor = 1e-12);

// n draws of mean + stddev * N(0, 1) from Rng{seed}.
std::vector<double> random_vector(size_t n, uint64_t seed, double mean = 0.0, double stddev = 1.0);

// Element-wise conversion to scalar type S.
template <class S>
std::vector<S> cast(const std::vector<double>& x) {
  return std::vector<S>(x.begin(), x.end());
}

// Euclidean norm ||a||_2.
double norm(const std::vector<double>& a);

// sum_i a_i * b_i.
double dot(const std::vector<double>& a, const std::vector<double>& b);

// ||a - b||_2 / max(||b||_2, 1e-300), b the reference; a NaN result is reported as +inf.
double rel_error(const std::vector<double>& a, const std::vector<double>& b);

// max_i |a_i - b_i| / max_i |b_i|, b the reference; NaN reported as +inf. A max-norm error:
// every entry is judged on the tensor's largest scale (the mesa layer's tolerances).
double max_rel_error(const std::vector<double>& a, const std::vector<double>& b);

// Central differences of f with respect to every entry of x:
//   grad_i = (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i),  h_i = 1e-6 * max(1, |x_i|).
// x is perturbed in place (f reads it) and restored exactly after each entry.
std::vector<double> finite_differences(std::vector<double>& x, const std::function<double()>& f);

}  // namespace mesalab::testing

// Expects two arrays to agree to a relative tolerance; prints where they differ most.
#define EXPECT_ALL_CLOSE(actual, expected, n, rel_tol)                                     \
  do {                                                                                     \
    const auto _d = ::mesalab::testing::compare((actual), (expected), (n));                \
    EXPECT_LE(_d.max_rel, (rel_tol)) << "max abs diff " << _d.max_abs << ", max rel diff " \
                                     << _d.max_rel << " at index " << _d.worst_index;      \
  } while (0)
