// The sinusoidal positional code (SPEC_EXPERIMENTS.md 1e) on hand-computed values.
#include "model/positional_codes.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.hpp"

namespace mesalab {
namespace {

// width 4: frequencies 10000^0 = 1 and 10000^{-2/4} = 0.01.
TEST(PositionalCodes, HandComputedValues) {
  std::vector<double> pe(3 * 4, -7.0);
  sinusoidal_positions(3, 4, pe.data());
  const std::vector<double> expected = {
      0.0,
      1.0,
      0.0,
      1.0,  // pos 0
      std::sin(1),
      std::cos(1),
      std::sin(0.01),
      std::cos(0.01),  // pos 1
      std::sin(2),
      std::cos(2),
      std::sin(0.02),
      std::cos(0.02),  // pos 2
  };
  for (size_t i = 0; i < pe.size(); ++i) EXPECT_NEAR(pe[i], expected[i], 1e-15) << "index " << i;
  // Hand values: sin 1 = 0.8414709848, cos 0.02 = 0.9998000067.
  EXPECT_NEAR(pe[4], 0.8414709848078965, 1e-15);
  EXPECT_NEAR(pe[11], 0.9998000066665778, 1e-15);

  // Odd width 5: columns sin/cos(pos), sin/cos(pos 10000^{-2/5}), sin(pos 10000^{-4/5}).
  std::vector<double> odd(4 * 5, -7.0);
  sinusoidal_positions(4, 5, odd.data());
  const double w1 = std::pow(10000.0, -0.4);  // 0.0251188643
  const double w2 = std::pow(10000.0, -0.8);  // 0.000630957344
  EXPECT_NEAR(w1, 0.025118864315095794, 1e-15);
  const int pos = 3;
  EXPECT_NEAR(odd[pos * 5 + 0], std::sin(3.0), 1e-15);
  EXPECT_NEAR(odd[pos * 5 + 1], std::cos(3.0), 1e-15);
  EXPECT_NEAR(odd[pos * 5 + 2], std::sin(3.0 * w1), 1e-15);
  EXPECT_NEAR(odd[pos * 5 + 3], std::cos(3.0 * w1), 1e-15);
  EXPECT_NEAR(odd[pos * 5 + 4], std::sin(3.0 * w2), 1e-15);
  for (int c = 0; c < 5; ++c) EXPECT_EQ(odd[c], c % 2 == 0 ? 0.0 : 1.0);  // pos 0

  // Width 1 is a single sine column.
  std::vector<double> one(3);
  sinusoidal_positions(3, 1, one.data());
  EXPECT_NEAR(one[2], std::sin(2.0), 1e-15);
}

TEST(PositionalCodes, PairsLieOnTheUnitCircle) {
  constexpr int kT = 50, kW = 16;
  std::vector<double> pe(kT * kW);
  sinusoidal_positions(kT, kW, pe.data());
  for (int pos = 0; pos < kT; ++pos) {
    for (int i = 0; i < kW / 2; ++i) {
      const double s = pe[pos * kW + 2 * i];
      const double c = pe[pos * kW + 2 * i + 1];
      ASSERT_NEAR(s * s + c * c, 1.0, 1e-14) << "pos " << pos << " pair " << i;
    }
    // The last pair turns by 10000^{-14/16} per position; its angle stays below pi here.
    const double angle = std::atan2(pe[pos * kW + kW - 2], pe[pos * kW + kW - 1]);
    EXPECT_NEAR(angle, pos * std::pow(10000.0, -14.0 / 16.0), 1e-14) << "pos " << pos;
  }
  EXPECT_THROW(sinusoidal_positions(0, 4, pe.data()), Error);
  EXPECT_THROW(sinusoidal_positions(4, 0, pe.data()), Error);
}

}  // namespace
}  // namespace mesalab
