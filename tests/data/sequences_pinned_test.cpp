// Bit-exact pins of the default (linear, no observation model) generator. Documented results
// depend on these exact numbers, so any change to the draw order, the Rng or the arithmetic of
// the linear recursion must fail here. The values were printed with %.17g from generator
// version 2 (kDataGeneratorVersion) and are the same in every build: scripts/test runs this
// file in the native default build and in the portable sanitizer build.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "data/sequences.hpp"

namespace mesalab {
namespace {

// FNV-1a over the bytes of every double: any single changed bit changes the hash.
uint64_t fnv1a(const std::vector<double>& values) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (double x : values) {
    uint64_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    for (int i = 0; i < 8; ++i) {
      h ^= (bits >> (8 * i)) & 0xffU;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

TEST(SequencesPinned, DefaultConfigIsBitExact) {
  const std::vector<double> s = sample_states(DataConfig{}, 42, RngPurpose::TrainData, 3, 4);
  ASSERT_EQ(s.size(), 2040U);
  EXPECT_EQ(s[0], -0.23308375100817624);
  EXPECT_EQ(s[1], 0.89031168439910746);
  EXPECT_EQ(s[9], 0.15737521205593508);
  EXPECT_EQ(s[10], 0.31910984543989607);
  EXPECT_EQ(s[509], -0.14906537602497427);
  EXPECT_EQ(s[510], -0.95240815673807866);
  EXPECT_EQ(s[1234], -0.39662523093964025);
  EXPECT_EQ(s[2039], 0.28636932891420158);
  double sum = 0.0;
  double weighted = 0.0;
  for (size_t i = 0; i < s.size(); ++i) {
    sum += s[i];
    weighted += s[i] * double(i % 97 + 1);
  }
  EXPECT_EQ(sum, -34.797638959058659);
  EXPECT_EQ(weighted, -1321.2357286948227);
  EXPECT_EQ(fnv1a(s), 0x3921523b0442011bULL);

  // The observed states of the default config are its hidden states.
  const SequenceBatch batch = sample_sequences(DataConfig{}, 42, RngPurpose::TrainData, 3, 4);
  EXPECT_EQ(fnv1a(batch.observed), 0x3921523b0442011bULL);
  EXPECT_EQ(fnv1a(batch.hidden), 0x3921523b0442011bULL);
}

TEST(SequencesPinned, SmallConfigIsBitExact) {
  DataConfig cfg;
  cfg.dim = 3;
  cfg.seq_len = 5;
  cfg.noise_std = 0.5;
  cfg.init_range = 2.0;
  const std::vector<double> s = sample_states(cfg, 7, RngPurpose::TestData, 0, 2);
  const std::vector<double> expected = {
      -1.1603901236736176,  0.34308681669430863, 1.8578389482053721,   0.90311698731389589,
      -1.1759740138824057,  -1.7679695957555293, -0.80930479193233329, 1.9696819986428351,
      1.6087966839158803,   0.63387569425934143, -1.7915754242465114,  -0.23204541000703827,
      -0.0130917435904922,  1.9899917769820374,  -1.0812028440901482,  0.50993800894032848,
      -1.4229599621853719,  1.8332409013814559,  1.1955217108676113,   0.82886662256011778,
      -0.39109890209217424, 0.70325567378821963, 1.2090264763124083,   1.986800281051299,
      1.5824521036273373,   0.70315203911969504, 0.25878988288425475,  1.1203335454674801,
      1.70932569756102,     0.7015233748184494,  1.3417141347008399,   0.88010020168347236,
      0.56298067784670602,  0.21004542207148313, 1.7510391529206319,   1.3707952120462981,
  };
  ASSERT_EQ(s.size(), expected.size());
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s[i], expected[i]) << "index " << i;
  EXPECT_EQ(fnv1a(s), 0xcde7acc298d4c151ULL);
}

// Pins the clipping branch too (17 entries sit exactly at the bound).
TEST(SequencesPinned, ClippedConfigIsBitExact) {
  DataConfig cfg;
  cfg.dim = 4;
  cfg.seq_len = 20;
  cfg.noise_std = 0.3;
  cfg.init_range = 3.0;
  cfg.state_clip = 2.0;
  const std::vector<double> s = sample_states(cfg, 123, RngPurpose::Tuning, 0, 3);
  int clipped = 0;
  for (double x : s) clipped += std::abs(x) == 2.0;
  EXPECT_EQ(clipped, 17);
  EXPECT_EQ(s[17], 2.0);
  EXPECT_EQ(s.back(), -1.8335542864434367);
  EXPECT_EQ(fnv1a(s), 0xaae9ad97ce8113c4ULL);
}

}  // namespace
}  // namespace mesalab
