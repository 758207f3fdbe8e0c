#pragma once
// End-to-end timings behind `mesalab bench`: ms per training step (forward + backward +
// AdamW) and per forward, with GFLOP/s by the project's convention, next to the machine's
// ceiling measured in the same run (a large single-precision GEMM on all threads).
#include <string>
#include <vector>

#include "model/transformer.hpp"
#include "train/run_config.hpp"

namespace mesalab {

struct BenchShape {
  int batch = 256, seq_len = 50, embed_dim = 40, heads = 4, key_size = 20;
};

// One benchmarked model: `layers` blocks of `kind`; `full` adds what the paper's
// full-fledged transformer has: raw tokens (E/4 wide) through an input/output embedding with
// positional codes, pre-LayerNorm and an MLP of width 2E in every block.
struct BenchModel {
  MixerKind kind = MixerKind::Linear;
  int layers = 1;
  bool full = false;
};

struct StepTiming {
  std::string kind;  // "lsa", "softmax", "mesa", or "full-<kind>"
  int layers = 0;
  double train_ms = 0, fwd_ms = 0;
  double train_gflops = 0, fwd_gflops = 0;  // GFLOP/s
  double fraction_of_ceiling = 0;           // train_gflops / ceiling
  double workspace_bytes = 0;               // the training runner's workspaces, all threads
};

// Flops of one forward, per layer: 2 B T E (H K) 4 (projections) + 4 B H T^2 K (scores and
// mixing), plus B H T (9 K^2 + 2 K) for a mesa layer's recursion, plus 4 B T E F for an MLP
// of width F; plus 2 B T (E_in E + E D) for an embedding. A training step counts 3x.
double forward_flops(const BenchShape& s, const BenchModel& m);

// Median time of a float GEMM n x n x n on all threads, as GFLOP/s.
double gemm_ceiling_gflops(int n = 1024);

// Median over repetitions (after warm-up) running for about `seconds` per measurement.
// min_reps: at least this many timed repetitions, even when they take longer than `seconds`.
StepTiming time_model(const BenchShape& s, const BenchModel& m, double seconds, int min_reps = 5);

// What a training run of `cfg` pays per step, as medians in ms: drawing its batch alone
// (data_ms), the model step alone on a fixed batch (forward, backward, AdamW: model_ms), and a
// real training step that draws its own batch first (step_ms), as train() runs it.
struct EndToEndTiming {
  double data_ms = 0, model_ms = 0, step_ms = 0;
};
EndToEndTiming time_end_to_end(const RunConfig& cfg, double seconds);

}  // namespace mesalab
