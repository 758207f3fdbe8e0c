#pragma once
// Few-shot in-context linear regression with a model trained on sequences (SPEC_EXPERIMENTS
// 8, 9). Per sequence one task: W ~ Haar O(D), x_j ~ U[-range, range]^D,
// y_j = W x_j + noise N(0, I), j = 1..T/2. The examples become one sequence of raw D-wide
// tokens in one of three formats, with T = seq_len:
//   Plain:  x_1, y_1, x_2, y_2, ...            T/2 pairs (a copy of the last x appended if T
//                                              is odd); data = seq[:-1], labels = seq[1:]
//   Eos:    x_1, y_1, EOS, x_2, y_2, EOS, ...  the first T/3 pairs, EOS one vector in R^D
//   Prefix: p_1 .. p_P, then the Eos format, truncated to the plain format's length T - 1
// The model's output at the position of x_j is read as its prediction of y_j (the label
// there); those are the scored positions, one per shot count j - 1.
// Task switch (the official ICLMulti): with switch_pair = k > 0, the examples j > k come from
// a second task, y_j = W' x_j, W' ~ Haar drawn after everything else (so the first task's
// draws are those of the run without a switch); the loss around the switch shows whether the
// model re-learns in context.
// The official generator reuses one noise draw for every sequence of a batch and shares a
// key between its two halves of x's; here every sequence has its own stream (neither quirk
// changes an expected loss).
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/rng.hpp"

namespace mesalab {

enum class IclFormat { Plain, Eos, Prefix };
std::string_view icl_format_name(IclFormat format);
IclFormat parse_icl_format(std::string_view name);  // "plain", "eos", "prefix"

struct IclConfig {
  int dim = 10;        // D
  int seq_len = 50;    // T
  double range = 1.0;  // x ~ U[-range, range]^D
  double noise = 0.0;  // y = W x + noise N(0, I)
  IclFormat format = IclFormat::Plain;
  int prefix_len = 0;   // P (Prefix format)
  int switch_pair = 0;  // k > 0: examples k+1, k+2, ... come from a second task
  void validate() const;
};

// Where things are in one formatted sequence of data (length tokens).
struct IclLayout {
  int length = 0;                // tokens per sequence fed to the model
  int prefix = 0;                // positions 0..prefix-1 hold the prefix tokens
  std::vector<int> x_positions;  // position of x_j, j = 1..; its label is y_j
  std::vector<int> eos_positions;
};
IclLayout icl_layout(const IclConfig& cfg);

// The examples of B tasks: x, y (B, T/2, D).
struct IclTasks {
  int batch = 0, pairs = 0, dim = 0;
  std::vector<double> x, y;
};
// Task b from Rng{seed, purpose, step, b}: W (D*D normals), then the x's, then the noise, then
// the second task's W' (with a switch).
// Evaluation draws with RngPurpose::Icl, prompt tuning with RngPurpose::Prompt.
IclTasks draw_icl_tasks(const IclConfig& cfg, uint64_t seed, RngPurpose purpose, uint64_t step,
                        int batch);

// The tasks in cfg's format: sequences (B, length + 1, D), the data and the final label. eos
// (D values) is needed by the Eos and Prefix formats, prefix (P x D values) by Prefix; unused
// ones may be empty.
struct IclBatch {
  int batch = 0, length = 0, dim = 0;
  std::vector<double> sequences;
};
IclBatch format_icl_batch(const IclConfig& cfg, const IclTasks& tasks,
                          const std::vector<double>& eos, const std::vector<double>& prefix);

// Model inputs of a formatted batch: tokens = sequences[:, :-1], labels = sequences[:, 1:],
// (B, length, D) each.
template <class S>
void icl_tokens(const IclBatch& batch, std::vector<S>& tokens, std::vector<S>& labels);

}  // namespace mesalab
