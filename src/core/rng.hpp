#pragma once
// Counter-based random numbers. A stream is identified by a tuple of integers
// (seed, purpose, step, index, ...) hashed into a 64-bit key; inside a stream numbers come
// from a SplitMix64 counter. Nothing depends on call order across streams, so a batch is a
// pure function of (seed, step) and is bit-identical for any number of threads.
// Normals use a ziggurat written here (std::normal_distribution is implementation-defined):
// one 64-bit draw and a multiply for ~99% of them, where Box-Muller pays a log, a sqrt, a sine
// and a cosine per pair.
#include <cmath>
#include <cstdint>
#include <initializer_list>

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
  Linearization = 11,   // the batches and initial weights of linear students (analysis)
};

namespace detail {

// Marsaglia & Tsang (2000), "The ziggurat method for generating random variables": the area
// under f(x) = exp(-x^2/2), x >= 0, cut into 256 layers of equal area V. Layer i >= 1 is the
// rectangle [0, x_i] x [f(x_i), f(x_{i+1})], x_1 = R > x_2 > ... > x_256 = 0, from
//   x_i (f(x_{i+1}) - f(x_i)) = V  =>  x_{i+1} = sqrt(-2 ln(V / x_i + f(x_i)));
// layer 0 is [0, x_0] x [0, f(R)] with x_0 = V / f(R): the rectangle under the curve up to R
// plus, in area, the tail beyond R.
struct ZigguratTables {
  static constexpr double kR = 3.6541528853610088;
  static constexpr double kV = 0.00492867323399;
  double x[257];
  double f[257];
  ZigguratTables() {
    x[0] = kV / std::exp(-0.5 * kR * kR);
    x[1] = kR;
    for (int i = 1; i < 255; ++i)
      x[i + 1] = std::sqrt(-2.0 * std::log(kV / x[i] + std::exp(-0.5 * x[i] * x[i])));
    x[256] = 0.0;
    for (int i = 0; i < 257; ++i) f[i] = std::exp(-0.5 * x[i] * x[i]);
  }
};

// Computed once, then only read.
inline const ZigguratTables& ziggurat_tables() {
  static const ZigguratTables tables;
  return tables;
}

}  // namespace detail

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
  // lo + (hi - lo) u as one explicit fma, rounded the same in every build.
  double uniform(double lo, double hi) { return std::fma(hi - lo, uniform(), lo); }
  // Standard normal by the ziggurat (detail::ZigguratTables). One draw gives the layer i (low
  // 8 bits) and x = u x_i with u uniform in [-1, 1) (top 53 bits). |x| < x_{i+1} lies inside
  // the layer below the curve: accept. Otherwise layer 0 samples the tail beyond R (Marsaglia
  // 1964), and layers i >= 1 accept x if a uniform height in [f(x_i), f(x_{i+1})] is below
  // f(x); a rejection starts over with a fresh draw.
  double normal() {
    const detail::ZigguratTables& z = detail::ziggurat_tables();
    constexpr double kR = detail::ZigguratTables::kR;
    for (;;) {
      const uint64_t bits = next_u64();
      const int i = int(bits & 0xff);
      const double u = 2.0 * (double(bits >> 11) * 0x1.0p-53) - 1.0;
      const double x = u * z.x[i];
      if (std::abs(x) < z.x[i + 1]) return x;
      if (i == 0) {
        double a = 0.0, b = 0.0;
        do {
          a = -std::log(1.0 - uniform()) / kR;  // 1 - uniform() is in (0, 1]
          b = -std::log(1.0 - uniform());
        } while (b + b < a * a);
        return u < 0.0 ? -(kR + a) : kR + a;
      }
      // An explicit fma rounds the same in every build (a compiler may or may not contract
      // a * b + c), so the accept decision, and with it the stream, is build-independent.
      const double height = std::fma(z.f[i + 1] - z.f[i], uniform(), z.f[i]);
      if (height < std::exp(-0.5 * x * x)) return x;
    }
  }

 private:
  uint64_t key_ = 0;
  uint64_t counter_ = 0;
};

}  // namespace mesalab
