// Bit-exact pins of the default (linear, no observation model) generator. Documented results
// depend on these exact numbers, so any change to the draw order, the Rng or the arithmetic of
// the linear recursion must fail here. The values were printed with %.17g from the generator
// as it was before the other dynamics kinds were added.
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
  EXPECT_EQ(s[0], 0.095067130157208579);
  EXPECT_EQ(s[1], 0.25034714036190864);
  EXPECT_EQ(s[9], 0.52558810351758578);
  EXPECT_EQ(s[10], -0.3975291303089884);
  EXPECT_EQ(s[509], -0.5340047523588316);
  EXPECT_EQ(s[510], 0.11644044865585856);
  EXPECT_EQ(s[1234], 0.099219250437025883);
  EXPECT_EQ(s[2039], -0.31500659083190674);
  double sum = 0.0;
  double weighted = 0.0;
  for (size_t i = 0; i < s.size(); ++i) {
    sum += s[i];
    weighted += s[i] * double(i % 97 + 1);
  }
  EXPECT_EQ(sum, -1.5106420515662484);
  EXPECT_EQ(weighted, -273.54926218394507);
  EXPECT_EQ(fnv1a(s), 0xcc7b45ab92fdffa3ULL);

  // The observed states of the default config are its hidden states.
  const SequenceBatch batch = sample_sequences(DataConfig{}, 42, RngPurpose::TrainData, 3, 4);
  EXPECT_EQ(fnv1a(batch.observed), 0xcc7b45ab92fdffa3ULL);
  EXPECT_EQ(fnv1a(batch.hidden), 0xcc7b45ab92fdffa3ULL);
}

TEST(SequencesPinned, SmallConfigIsBitExact) {
  DataConfig cfg;
  cfg.dim = 3;
  cfg.seq_len = 5;
  cfg.noise_std = 0.5;
  cfg.init_range = 2.0;
  const std::vector<double> s = sample_states(cfg, 7, RngPurpose::TestData, 0, 2);
  const std::vector<double> expected = {
      0.34308681669430863, 1.8578389482053721,   0.14720512428048416,  -0.27629683192403626,
      -1.3948789554534096, -1.6787819182388002,  1.7468769717775159,   0.6633521910596355,
      0.73553397088842865, -0.16338213773373797, -1.869362897166593,   -0.37245204758210182,
      0.55632646148430287, 0.39283014640551472,  2.5893575359751178,   -2.59473427702962,
      -1.4728422658576035, 0.26419458623003184,  0.82886662256011778,  -0.39109890209217424,
      0.84261928601185998, -1.3010068171349771,  0.9364172645698271,   -0.11825937628859501,
      0.82740503354413852, 0.63678883982511914,  -0.91195947621365758, -0.71766678234707038,
      -1.5500043863634669, -0.19477036650110596, -0.19498478143125009, 0.64841216559994908,
      1.9553692842408148,  0.53320897620228758,  1.9999002322219495,   -1.2933184751369531,
  };
  ASSERT_EQ(s.size(), expected.size());
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s[i], expected[i]) << "index " << i;
  EXPECT_EQ(fnv1a(s), 0xc4faf8847df29449ULL);
}

// Pins the clipping branch too (27 entries sit exactly at the bound).
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
  EXPECT_EQ(clipped, 27);
  EXPECT_EQ(s[17], 2.0);
  EXPECT_EQ(s.back(), -0.52322476535133289);
  EXPECT_EQ(fnv1a(s), 0x55ce7cc0b849db3fULL);
}

}  // namespace
}  // namespace mesalab
