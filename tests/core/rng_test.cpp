#include "core/rng.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace mesalab {
namespace {

// P(X <= x) for X ~ N(0, 1).
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Pearson's chi-square of 10^6 normals against N(0, 1) in 80 bins of width 0.1 on [-4, 4]
// plus the two tails (81 degrees of freedom: mean 81, sd 12.7). A wrong layer, wedge or tail
// of the ziggurat shifts mass between bins and drives it far beyond the bound.
TEST(RngNormal, MatchesTheStandardNormalByChiSquare) {
  constexpr int kN = 1000000, kBins = 80;
  std::vector<double> counts(kBins + 2, 0.0);
  Rng rng{2024, 1};
  for (int n = 0; n < kN; ++n) {
    const double x = rng.normal();
    // (x + 4) / 0.1 may round up to 80 just below x = 4: such an x stays in the last bin.
    const int bin = x < -4.0 ? 0 : x >= 4.0 ? kBins + 1 : std::min(1 + int((x + 4.0) / 0.1), kBins);
    counts[size_t(bin)] += 1.0;
  }
  double chi2 = 0.0;
  for (int b = 0; b < kBins + 2; ++b) {
    const double lo = b == 0 ? -INFINITY : -4.0 + 0.1 * (b - 1);
    const double hi = b == kBins + 1 ? INFINITY : -4.0 + 0.1 * b;
    const double expected = kN * (normal_cdf(hi) - normal_cdf(lo));
    chi2 += (counts[size_t(b)] - expected) * (counts[size_t(b)] - expected) / expected;
  }
  EXPECT_LT(chi2, 81.0 + 5.0 * 12.7);
}

// The tail beyond R = 3.654 comes from its own sampler: its mass, 2 (1 - Phi(R)) = 2.58e-4,
// and its mean excess E[X - R | X > R] = phi(R) / (1 - Phi(R)) - R = 0.248.
TEST(RngNormal, TailBeyondTheZigguratBaseHasTheRightMassAndShape) {
  constexpr int kN = 4000000;
  constexpr double kR = detail::ZigguratTables::kR;
  Rng rng{7, 7};
  int tail = 0;
  double excess = 0.0;
  for (int n = 0; n < kN; ++n) {
    const double x = std::abs(rng.normal());
    if (x > kR) {
      ++tail;
      excess += x - kR;
    }
  }
  const double p = 2.0 * (1.0 - normal_cdf(kR));
  const double sd = std::sqrt(kN * p);
  EXPECT_NEAR(tail, kN * p, 5.0 * sd);
  const double pdf = std::exp(-0.5 * kR * kR) / std::sqrt(2.0 * M_PI);
  EXPECT_NEAR(excess / tail, pdf / (1.0 - normal_cdf(kR)) - kR, 0.03);
}

// The layers have equal area V and the top one ends at x = 0 with f = 1 (up to rounding),
// which is what makes every layer equally likely to be the right one.
TEST(RngNormal, ZigguratLayersCloseAtTheTop) {
  const detail::ZigguratTables& z = detail::ziggurat_tables();
  EXPECT_EQ(z.x[1], detail::ZigguratTables::kR);
  for (int i = 1; i < 256; ++i) EXPECT_GT(z.x[i], z.x[i + 1]) << i;
  // Layer 255 spans [f(x_255), 1]: its area x_255 (1 - f(x_255)) must be V.
  EXPECT_NEAR(z.x[255] * (1.0 - z.f[255]), detail::ZigguratTables::kV, 1e-9);
}

TEST(Rng, StreamsArePureFunctionsOfTheirKey) {
  Rng a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4};
  for (int i = 0; i < 100; ++i) {
    const double x = a.normal();
    EXPECT_EQ(x, b.normal());
    EXPECT_NE(x, c.normal());
  }
  Rng u{9};
  for (int i = 0; i < 10000; ++i) {
    const double v = u.uniform(-2.0, 3.0);
    ASSERT_TRUE(v >= -2.0 && v < 3.0) << v;
  }
}

}  // namespace
}  // namespace mesalab
