// Google Benchmark microbenchmarks of the sequence-mixer kernels at the paper's default
// shape (T=50, H=4, K=20) on one chunk of 8 sequences, the unit of work of a thread.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.hpp"
#include "model/linear_attention.hpp"
#include "model/softmax_attention.hpp"

namespace {

using namespace mesalab;

struct MixerInputs {
  AttentionShape shape{8, 50, 4, 20};
  std::vector<float> q, k, v, out, cache, d_out, dq, dk, dv, scratch;
  MixerInputs() {
    const size_t n = shape.tokens() * shape.width();
    Rng rng{1};
    for (auto* buf : {&q, &k, &v, &d_out}) {
      buf->resize(n);
      for (float& x : *buf) x = float(rng.normal());
    }
    out.resize(n);
    dq.resize(n);
    dk.resize(n);
    dv.resize(n);
    cache.resize(linear_attention_cache_size(shape));
    scratch.resize(size_t(shape.seq_len) * shape.seq_len);
  }
  // Flops of one forward: 2 products of 2*T*T*K per (b, h).
  double forward_flops() const {
    return 4.0 * shape.batch * shape.heads * shape.seq_len * shape.seq_len * shape.key_size;
  }
};

void BM_LinearAttentionForward(benchmark::State& state) {
  MixerInputs in;
  for (auto _ : state) {
    linear_attention_forward(in.shape, in.q.data(), in.k.data(), in.v.data(), in.cache.data(),
                             in.out.data());
    benchmark::DoNotOptimize(in.out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(in.forward_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearAttentionForward);

void BM_LinearAttentionBackward(benchmark::State& state) {
  MixerInputs in;
  linear_attention_forward(in.shape, in.q.data(), in.k.data(), in.v.data(), in.cache.data(),
                           in.out.data());
  for (auto _ : state) {
    linear_attention_backward(in.shape, in.q.data(), in.k.data(), in.v.data(), in.cache.data(),
                              in.d_out.data(), in.dq.data(), in.dk.data(), in.dv.data(),
                              in.scratch.data());
    benchmark::DoNotOptimize(in.dq.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2 * in.forward_flops() * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearAttentionBackward);

void BM_SoftmaxAttentionForward(benchmark::State& state) {
  MixerInputs in;
  for (auto _ : state) {
    softmax_attention_forward(in.shape, in.q.data(), in.k.data(), in.v.data(), in.cache.data(),
                              in.out.data());
    benchmark::DoNotOptimize(in.out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(in.forward_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SoftmaxAttentionForward);

void BM_SoftmaxAttentionBackward(benchmark::State& state) {
  MixerInputs in;
  softmax_attention_forward(in.shape, in.q.data(), in.k.data(), in.v.data(), in.cache.data(),
                            in.out.data());
  for (auto _ : state) {
    softmax_attention_backward(in.shape, in.q.data(), in.k.data(), in.v.data(), in.cache.data(),
                               in.d_out.data(), in.dq.data(), in.dk.data(), in.dv.data(),
                               in.scratch.data());
    benchmark::DoNotOptimize(in.dq.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2 * in.forward_flops() * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SoftmaxAttentionBackward);

}  // namespace

BENCHMARK_MAIN();
