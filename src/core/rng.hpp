#pragma once
// Counter-based random numbers. A stream is identified by a tuple of integers
// (seed, purpose, step, index, ...) hashed into a 64-bit key; inside a stream numbers come
// from a SplitMix64 counter. Nothing depends on call order across streams, so a batch is a
// pure function of (seed, step) and is bit-identical for any number of threads.
// Normals use Box-Muller written here (std::normal_distribution is implementation-defined).
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <numbers>

namespace mesalab {

// SplitMix64 finaliser: a bijective 64-bit mixer (Steele, Lea, Flood 2014).
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Stream-id purposes, so that different uses of one seed never share numbers.
enum class RngPurpose : uint64_t {
  TrainData = 1,
  TestData = 2,
  Init = 3,
  Tuning = 4,
  Probe = 5,
  Icl = 6,
  Prompt = 7,
  Fixed = 8,
  FixedTransition = 9,  // the one shared W of DynamicsKind::Fixed (data/sequences.hpp)
  NonlinearMlp = 10,    // the fixed A, B of DynamicsKind::Nonlinear (data/sequences.hpp)
};

class Rng {
 public:
  // Key from any number of integers: key = mix(... mix(mix(c0) ^ c1) ...).
  Rng(std::initializer_list<uint64_t> ids) {
    uint64_t k = 0x9e3779b97f4a7c15ULL;
    for (uint64_t id : ids) k = mix64(k ^ mix64(id + 0x632be59bd9b4e019ULL));
    key_ = k;
  }
  uint64_t next_u64() { return mix64(key_ + 0x9e3779b97f4a7c15ULL * ++counter_); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal by Box-Muller; the second value is cached.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = 0.0;
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  uint64_t key_ = 0;
  uint64_t counter_ = 0;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace mesalab
