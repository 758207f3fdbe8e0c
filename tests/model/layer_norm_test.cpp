// Tests of the LayerNorm kernels: the forward against an independent naive implementation
// and its defining statistics (double), float against double, the hand-written backward
// against central finite differences, accumulation into the gradient buffers, and a
// mutation check showing the finite-difference harness does catch a wrong gradient.
#include "model/layer_norm.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

struct Case {
  size_t rows;
  int width;
  Vec x, scale, bias;
  size_t size() const { return rows * size_t(width); }
};

// Rows with an offset and non-unit spread, non-trivial scale and bias.
Case random_case(size_t rows, int width, uint64_t seed) {
  Case c{rows, width, random_vector(rows * width, seed, 0.7, 2.0),
         random_vector(width, seed + 1, 1.0, 0.5), random_vector(width, seed + 2, 0.0, 0.5)};
  return c;
}

template <class S>
std::vector<S> forward(const Case& c, std::vector<S>* cache_out = nullptr) {
  const auto x = cast<S>(c.x), scale = cast<S>(c.scale), bias = cast<S>(c.bias);
  std::vector<S> cache(layer_norm_cache_size(c.rows)), out(c.size());
  layer_norm_forward(c.rows, c.width, x.data(), scale.data(), bias.data(), cache.data(),
                     out.data());
  if (cache_out) *cache_out = std::move(cache);
  return out;
}

struct Grads {
  Vec dx, d_scale, d_bias;
};

// Runs the double backward `calls` times on the buffers in `g` (accumulating).
void backward(const Case& c, const Vec& d_out, Grads& g, int calls = 1) {
  Vec cache;
  forward<double>(c, &cache);
  for (int i = 0; i < calls; ++i) {
    layer_norm_backward(c.rows, c.width, c.x.data(), c.scale.data(), cache.data(), d_out.data(),
                        g.dx.data(), g.d_scale.data(), g.d_bias.data());
  }
}

Grads zero_grads(const Case& c) {
  return {Vec(c.size(), 0.0), Vec(c.width, 0.0), Vec(c.width, 0.0)};
}

// Textbook LayerNorm, written independently of the kernel.
Vec naive_layer_norm(const Case& c) {
  Vec out(c.size());
  const int E = c.width;
  for (size_t r = 0; r < c.rows; ++r) {
    const double* x = c.x.data() + r * E;
    double mu = 0;
    for (int j = 0; j < E; ++j) mu += x[j] / E;
    double var = 0;
    for (int j = 0; j < E; ++j) var += (x[j] - mu) * (x[j] - mu) / E;
    for (int j = 0; j < E; ++j)
      out[r * E + j] = c.scale[j] * (x[j] - mu) / std::sqrt(var + 1e-6) + c.bias[j];
  }
  return out;
}

TEST(LayerNorm, ForwardMatchesNaive) {
  const Case c = random_case(9, 40, 1);
  EXPECT_LT(rel_error(forward<double>(c), naive_layer_norm(c)), 1e-14);
}

// With scale 1 and bias 0 every row has mean 0 and variance var / (var + eps); rows with a
// variance near eps (and a constant row) show that eps sits inside the square root.
TEST(LayerNorm, NormalisedRowsHaveZeroMeanAndShrunkVariance) {
  const int E = 16;
  const std::vector<double> stddevs{1.0, 5.0, 1e-3, 3e-4, 0.0};
  Case c{stddevs.size(), E, {}, Vec(E, 1.0), Vec(E, 0.0)};
  for (size_t r = 0; r < stddevs.size(); ++r) {
    const Vec row = random_vector(E, 10 + r, 2.5, stddevs[r]);
    c.x.insert(c.x.end(), row.begin(), row.end());
  }
  const Vec y = forward<double>(c);
  for (size_t r = 0; r < c.rows; ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    double mu = 0, var = 0, out_mean = 0, out_var = 0;
    for (int j = 0; j < E; ++j) mu += c.x[r * E + j] / E;
    for (int j = 0; j < E; ++j) var += std::pow(c.x[r * E + j] - mu, 2) / E;
    for (int j = 0; j < E; ++j) out_mean += y[r * E + j] / E;
    for (int j = 0; j < E; ++j) out_var += std::pow(y[r * E + j] - out_mean, 2) / E;
    EXPECT_NEAR(out_mean, 0.0, 1e-12);
    EXPECT_NEAR(out_var, var / (var + kLayerNormEps<double>), 1e-12);
  }
}

TEST(LayerNorm, FloatForwardMatchesDouble) {
  const Case c = random_case(50, 40, 2);
  const auto f = forward<float>(c);
  EXPECT_LT(rel_error(Vec(f.begin(), f.end()), forward<double>(c)), 1e-5);
  std::vector<float> fc;
  Vec dc;
  forward<float>(c, &fc);
  forward<double>(c, &dc);
  EXPECT_LT(rel_error(Vec(fc.begin(), fc.end()), dc), 1e-5) << "cache (mu, rstd)";
}

// Relative errors of the analytic gradients of the scalar loss out . p (p a fixed random
// projection) against central differences, per tensor. The analytic gradients are scaled by
// `mutate` first: 1 for the real check, anything else to show that the check can fail.
struct GradErrors {
  double dx, d_scale, d_bias;
};

GradErrors gradient_errors(Case c, double mutate = 1.0) {
  const Vec p = random_vector(c.size(), 99);
  Grads g = zero_grads(c);
  backward(c, p, g);
  for (Vec* v : {&g.dx, &g.d_scale, &g.d_bias})
    for (double& x : *v) x *= mutate;
  auto loss = [&] { return dot(forward<double>(c), p); };
  return {rel_error(g.dx, finite_differences(c.x, loss)),
          rel_error(g.d_scale, finite_differences(c.scale, loss)),
          rel_error(g.d_bias, finite_differences(c.bias, loss))};
}

TEST(LayerNorm, GradientsMatchFiniteDifferences) {
  const GradErrors e = gradient_errors(random_case(7, 12, 3));
  EXPECT_LT(e.dx, 1e-6);
  EXPECT_LT(e.d_scale, 1e-6);
  EXPECT_LT(e.d_bias, 1e-6);
}

// The same harness flags analytic gradients that are 1% off.
TEST(LayerNorm, GradientCheckCatchesAOnePercentError) {
  const GradErrors e = gradient_errors(random_case(7, 12, 3), 1.01);
  EXPECT_GT(e.dx, 1e-3);
  EXPECT_GT(e.d_scale, 1e-3);
  EXPECT_GT(e.d_bias, 1e-3);
}

// dx, d_scale and d_bias are accumulated: a nonzero starting buffer plus one gradient after
// one call, plus two gradients after two.
TEST(LayerNorm, BackwardAccumulates) {
  const Case c = random_case(7, 12, 4);
  const Vec p = random_vector(c.size(), 98);
  Grads once = zero_grads(c);
  backward(c, p, once);
  const Grads start{random_vector(c.size(), 5), random_vector(c.width, 6),
                    random_vector(c.width, 7)};
  Grads acc = start;
  auto expected = [](const Vec& base, const Vec& grad, double k) {
    Vec e(base.size());
    for (size_t i = 0; i < e.size(); ++i) e[i] = base[i] + k * grad[i];
    return e;
  };
  backward(c, p, acc);
  EXPECT_LT(rel_error(acc.dx, expected(start.dx, once.dx, 1)), 1e-14);
  EXPECT_LT(rel_error(acc.d_scale, expected(start.d_scale, once.d_scale, 1)), 1e-14);
  EXPECT_LT(rel_error(acc.d_bias, expected(start.d_bias, once.d_bias, 1)), 1e-14);
  backward(c, p, acc);
  EXPECT_LT(rel_error(acc.dx, expected(start.dx, once.dx, 2)), 1e-14);
  EXPECT_LT(rel_error(acc.d_scale, expected(start.d_scale, once.d_scale, 2)), 1e-14);
  EXPECT_LT(rel_error(acc.d_bias, expected(start.d_bias, once.d_bias, 2)), 1e-14);

  Grads twice = zero_grads(c);
  backward(c, p, twice, 2);
  for (double& x : once.d_scale) x *= 2;
  for (double& x : once.d_bias) x *= 2;
  EXPECT_LT(rel_error(twice.d_scale, once.d_scale), 1e-14);
  EXPECT_LT(rel_error(twice.d_bias, once.d_bias), 1e-14);
}

}  // namespace
}  // namespace mesalab
