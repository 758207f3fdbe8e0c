// Google Benchmark microbenchmarks of the mesa mixer at the paper's default shape (T=50,
// H=4, K=20) on one chunk of 8 sequences, comparable with the LSA mixer benchmarks in
// attention_bench.cpp (same inputs, same chunk).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "core/rng.hpp"
#include "model/mesa_attention.hpp"

namespace {

using namespace mesalab;

struct MesaInputs {
  AttentionShape shape;
  MesaOptions opt;
  std::vector<float> q, k, v, lambdas, out, cache, d_out, dq, dk, dv, d_lambdas, scratch;
  bool keep_inverses = true;  // false: the backward recomputes R_1..R_T
  explicit MesaInputs(int key_size = 20, int seq_len = 50, bool keep = true)
      : shape{8, seq_len, 4, key_size}, keep_inverses(keep) {
    const size_t n = shape.tokens() * shape.width();
    Rng rng{1};
    for (auto* buf : {&q, &k, &v, &d_out}) {
      buf->resize(n);
      for (float& x : *buf) x = float(rng.normal());
    }
    lambdas.assign(size_t(shape.heads), 1.0f);
    d_lambdas.assign(size_t(shape.heads), 0.0f);
    out.resize(n);
    dq.resize(n);
    dk.resize(n);
    dv.resize(n);
    cache.resize(mesa_attention_cache_size(shape, keep_inverses));
    scratch.resize(
        std::max(size_t(shape.seq_len) * shape.seq_len, mesa_attention_scratch_size(shape)));
  }
  void forward() {
    mesa_attention_forward(shape, opt, q.data(), k.data(), v.data(), lambdas.data(), cache.data(),
                           out.data(), keep_inverses);
  }
  void backward() {
    mesa_attention_backward(shape, opt, q.data(), k.data(), v.data(), lambdas.data(), cache.data(),
                            d_out.data(), dq.data(), dk.data(), dv.data(), d_lambdas.data(),
                            scratch.data(), keep_inverses);
  }
  // Flops of one forward: the recursion, B*H*T*(9K^2 + 2K) by the project's convention,
  // plus the two causal products L = P X^T and out = L Y (2*T*T*K each per (b, h)), as
  // counted for LSA.
  double forward_flops() const {
    const double B = shape.batch, H = shape.heads, T = shape.seq_len, K = shape.key_size;
    return B * H * T * (9 * K * K + 2 * K) + 4 * B * H * T * T * K;
  }
};

void BM_MesaAttentionForward(benchmark::State& state) {
  MesaInputs in;
  for (auto _ : state) {
    in.forward();
    benchmark::DoNotOptimize(in.out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(in.forward_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MesaAttentionForward);

void BM_MesaAttentionBackward(benchmark::State& state) {
  MesaInputs in;
  in.forward();
  for (auto _ : state) {
    in.backward();
    benchmark::DoNotOptimize(in.dq.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2 * in.forward_flops() * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MesaAttentionBackward);

// Argument: the key size; 20 takes the compile-time specialised recursion, 16 the generic one.
void BM_MesaAttentionForwardBackward(benchmark::State& state) {
  MesaInputs in(int(state.range(0)));
  for (auto _ : state) {
    in.forward();
    in.backward();
    benchmark::DoNotOptimize(in.dq.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(3 * in.forward_flops() * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MesaAttentionForwardBackward)->Arg(20)->Arg(16);

// Stored against recomputed inverses (K = 20, one chunk of 8 sequences); arguments: T and
// keep_inverses (1 stored, 0 recomputed in the backward).
void BM_MesaInverseStorage(benchmark::State& state) {
  MesaInputs in(20, int(state.range(0)), state.range(1) != 0);
  for (auto _ : state) {
    in.forward();
    in.backward();
    benchmark::DoNotOptimize(in.dq.data());
  }
  state.counters["cache MB"] = double(in.cache.size()) * sizeof(float) / 1048576.0;
}
BENCHMARK(BM_MesaInverseStorage)->ArgsProduct({{50, 100, 200, 400, 800}, {1, 0}});

}  // namespace
