// Tests of the MLP kernels: gelu and its derivative against independent values, the forward
// against a naive triple loop (with and without biases, double), float against double, the
// hand-written backward against central finite differences, the overwrite/accumulate
// contract of the gradient buffers, and a mutation check showing the finite-difference
// harness does catch a wrong gradient.
#include "model/mlp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace mesalab {
namespace {

using Vec = std::vector<double>;

using testing::cast;
using testing::dot;
using testing::finite_differences;
using testing::random_vector;
using testing::rel_error;

// One MLP instance; empty b1 / b2 mean "no bias".
struct Case {
  size_t rows;
  int width, hidden;
  Vec x, w1, b1, w2, b2;
  size_t size() const { return rows * size_t(width); }
};

// Pre-activations of O(1), so gelu is used well inside its curved range.
Case random_case(size_t rows, int width, int hidden, bool bias1, bool bias2, uint64_t seed) {
  Case c{rows,
         width,
         hidden,
         random_vector(rows * width, seed),
         random_vector(size_t(width) * hidden, seed + 1, 0.0, 1.5 / std::sqrt(width)),
         {},
         random_vector(size_t(hidden) * width, seed + 3, 0.0, 1.0 / std::sqrt(hidden)),
         {}};
  if (bias1) c.b1 = random_vector(hidden, seed + 2, 0.0, 0.5);
  if (bias2) c.b2 = random_vector(width, seed + 4, 0.0, 0.5);
  return c;
}

template <class S>
const S* ptr_or_null(const std::vector<S>& v) {
  return v.empty() ? nullptr : v.data();
}

template <class S>
std::vector<S> forward(const Case& c, std::vector<S>* cache_out = nullptr) {
  const auto x = cast<S>(c.x), w1 = cast<S>(c.w1), b1 = cast<S>(c.b1), w2 = cast<S>(c.w2),
             b2 = cast<S>(c.b2);
  std::vector<S> cache(mlp_cache_size(c.rows, c.hidden)), out(c.size(), S(-7));
  mlp_forward(c.rows, c.width, c.hidden, x.data(), w1.data(), ptr_or_null(b1), w2.data(),
              ptr_or_null(b2), cache.data(), out.data());
  if (cache_out) *cache_out = std::move(cache);
  return out;
}

struct Grads {
  Vec d_in, dw1, db1, dw2, db2;  // db* empty without the bias
};

// Double backward for d_out on the given buffers (d_in overwritten, the rest accumulated).
void backward(const Case& c, const Vec& d_out, Grads& g) {
  Vec cache;
  forward<double>(c, &cache);
  Vec scratch(c.rows * c.hidden);
  mlp_backward(c.rows, c.width, c.hidden, c.x.data(), c.w1.data(), c.w2.data(), cache.data(),
               d_out.data(), g.d_in.data(), g.dw1.data(), c.b1.empty() ? nullptr : g.db1.data(),
               g.dw2.data(), c.b2.empty() ? nullptr : g.db2.data(), scratch.data());
}

Grads filled_grads(const Case& c, double value) {
  return {Vec(c.size(), value), Vec(c.w1.size(), value), Vec(c.b1.size(), value),
          Vec(c.w2.size(), value), Vec(c.b2.size(), value)};
}

std::string bias_label(bool bias1, bool bias2) {
  return std::string(bias1 ? "b1" : "no b1") + ", " + (bias2 ? "b2" : "no b2");
}

// gelu with the constants spelled out, as jax.nn.gelu(approximate=True).
double reference_gelu(double h) {
  return 0.5 * h *
         (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (h + 0.044715 * h * h * h)));
}

TEST(Gelu, MatchesTanhApproximation) {
  EXPECT_EQ(gelu(0.0), 0.0);
  // 0.841191990608276704782 to 21 digits (40-digit mpmath evaluation of the formula).
  EXPECT_NEAR(gelu(1.0), 0.8411919906082767, 1e-12);
  // The exact (erf) GELU is 0.8413447460685429 at 1: this is the approximation.
  EXPECT_GT(std::abs(gelu(1.0) - 0.5 * (1.0 + std::erf(1.0 / std::sqrt(2.0)))), 1e-4);
  EXPECT_NEAR(gelu(-3.0), -0.0036373920817730188, 1e-15);
  for (const double h : {-6.0, -2.5, -0.3, 0.1, 0.7, 2.0, 4.5, 12.0}) {
    EXPECT_NEAR(gelu(h), reference_gelu(h), 1e-14 * std::max(1.0, std::abs(h))) << "h = " << h;
    EXPECT_NEAR(gelu(float(h)), reference_gelu(h), 1e-6 * std::max(1.0, std::abs(h)))
        << "float, h = " << h;
  }
}

TEST(Gelu, DerivativeMatchesFiniteDifferences) {
  EXPECT_NEAR(gelu_derivative(0.0), 0.5, 1e-15);
  for (const double h : {-6.0, -2.5, -1.0, -0.3, 0.0, 0.1, 0.7, 1.0, 2.0, 4.5}) {
    const double step = 1e-5;
    const double fd = (reference_gelu(h + step) - reference_gelu(h - step)) / (2 * step);
    EXPECT_NEAR(gelu_derivative(h), fd, 1e-9) << "h = " << h;
    EXPECT_NEAR(gelu_derivative(float(h)), fd, 1e-5) << "float, h = " << h;
  }
}

// out[r, e] = sum_f gelu(sum_j x[r, j] W1[j, f] + b1[f]) W2[f, e] + b2[e].
Vec naive_mlp(const Case& c) {
  const int E = c.width, F = c.hidden;
  Vec out(c.size());
  for (size_t r = 0; r < c.rows; ++r) {
    Vec g(F);
    for (int f = 0; f < F; ++f) {
      double h = c.b1.empty() ? 0.0 : c.b1[f];
      for (int j = 0; j < E; ++j) h += c.x[r * E + j] * c.w1[size_t(j) * F + f];
      g[f] = reference_gelu(h);
    }
    for (int e = 0; e < E; ++e) {
      double o = c.b2.empty() ? 0.0 : c.b2[e];
      for (int f = 0; f < F; ++f) o += g[f] * c.w2[size_t(f) * E + e];
      out[r * E + e] = o;
    }
  }
  return out;
}

TEST(Mlp, ForwardMatchesNaive) {
  for (const bool bias1 : {false, true}) {
    for (const bool bias2 : {false, true}) {
      SCOPED_TRACE(bias_label(bias1, bias2));
      const Case c = random_case(11, 8, 16, bias1, bias2, 1);
      EXPECT_LT(rel_error(forward<double>(c), naive_mlp(c)), 1e-14);
    }
  }
}

TEST(Mlp, FloatForwardMatchesDouble) {
  const Case c = random_case(50, 40, 80, true, true, 2);
  const auto f = forward<float>(c);
  EXPECT_LT(rel_error(Vec(f.begin(), f.end()), forward<double>(c)), 1e-5);
}

// Relative errors of the analytic gradients of the scalar loss out . p (p a fixed random
// projection) against central differences, per tensor (0 for an absent bias). The analytic
// gradients are scaled by `mutate` first: 1 for the real check, anything else to show that
// the check can fail.
struct GradErrors {
  double d_in, dw1, db1, dw2, db2;
};

GradErrors gradient_errors(Case c, double mutate = 1.0) {
  const Vec p = random_vector(c.size(), 99);
  Grads g = filled_grads(c, 0.0);
  backward(c, p, g);
  for (Vec* v : {&g.d_in, &g.dw1, &g.db1, &g.dw2, &g.db2})
    for (double& x : *v) x *= mutate;
  auto loss = [&] { return dot(forward<double>(c), p); };
  auto err = [&](const Vec& analytic, Vec& param) {
    return param.empty() ? 0.0 : rel_error(analytic, finite_differences(param, loss));
  };
  return {err(g.d_in, c.x), err(g.dw1, c.w1), err(g.db1, c.b1), err(g.dw2, c.w2), err(g.db2, c.b2)};
}

TEST(Mlp, GradientsMatchFiniteDifferences) {
  for (const bool bias1 : {false, true}) {
    for (const bool bias2 : {false, true}) {
      SCOPED_TRACE(bias_label(bias1, bias2));
      const GradErrors e = gradient_errors(random_case(6, 8, 16, bias1, bias2, 3));
      EXPECT_LT(e.d_in, 1e-6) << "d_in";
      EXPECT_LT(e.dw1, 1e-6) << "dw1";
      EXPECT_LT(e.db1, 1e-6) << "db1";
      EXPECT_LT(e.dw2, 1e-6) << "dw2";
      EXPECT_LT(e.db2, 1e-6) << "db2";
    }
  }
}

// The same harness flags analytic gradients that are 1% off.
TEST(Mlp, GradientCheckCatchesAOnePercentError) {
  const GradErrors e = gradient_errors(random_case(6, 8, 16, true, true, 3), 1.01);
  EXPECT_GT(e.d_in, 1e-3);
  EXPECT_GT(e.dw1, 1e-3);
  EXPECT_GT(e.db1, 1e-3);
  EXPECT_GT(e.dw2, 1e-3);
  EXPECT_GT(e.db2, 1e-3);
}

// d_in is overwritten (whatever it held), the weight and bias gradients are accumulated.
TEST(Mlp, BackwardOverwritesInputGradientAndAccumulatesParameters) {
  const Case c = random_case(6, 8, 16, true, true, 4);
  const Vec p = random_vector(c.size(), 98);
  Grads once = filled_grads(c, 0.0);
  backward(c, p, once);
  const double offset = 0.375;
  Grads acc = filled_grads(c, offset);
  backward(c, p, acc);
  backward(c, p, acc);
  EXPECT_EQ(acc.d_in, once.d_in);
  const std::vector<std::pair<Vec*, Vec*>> params{
      {&acc.dw1, &once.dw1}, {&acc.db1, &once.db1}, {&acc.dw2, &once.dw2}, {&acc.db2, &once.db2}};
  for (const auto& [a, o] : params) {
    Vec expected(o->size());
    for (size_t i = 0; i < expected.size(); ++i) expected[i] = offset + 2 * (*o)[i];
    EXPECT_LT(rel_error(*a, expected), 1e-14);
  }
}

// d_in may share its buffer with d_out.
TEST(Mlp, BackwardInputGradientMayAliasOutputGradient) {
  const Case c = random_case(6, 8, 16, true, true, 5);
  const Vec p = random_vector(c.size(), 97);
  Grads separate = filled_grads(c, 0.0);
  backward(c, p, separate);
  Vec cache;
  forward<double>(c, &cache);
  Grads shared = filled_grads(c, 0.0);
  Vec buffer = p, scratch(c.rows * c.hidden);
  mlp_backward(c.rows, c.width, c.hidden, c.x.data(), c.w1.data(), c.w2.data(), cache.data(),
               buffer.data(), buffer.data(), shared.dw1.data(), shared.db1.data(),
               shared.dw2.data(), shared.db2.data(), scratch.data());
  EXPECT_EQ(buffer, separate.d_in);
  EXPECT_EQ(shared.dw1, separate.dw1);
  EXPECT_EQ(shared.db1, separate.db1);
  EXPECT_EQ(shared.dw2, separate.dw2);
  EXPECT_EQ(shared.db2, separate.db2);
}

}  // namespace
}  // namespace mesalab
