#pragma once
// What a training run will allocate, estimated before it allocates anything, so that an
// impossible config (e.g. seq_len 100000 with batch 10^6) is refused with the estimate and
// the memory available instead of dying with "std::bad_alloc".
#include <cstdint>
#include <string>

#include "train/run_config.hpp"

namespace mesalab {

struct MemoryEstimate {
  double bytes = 0.0;     // total (double: the products of absurd configs overflow size_t)
  std::string breakdown;  // "parameters and optimizer 1.2 MiB, gradient partials ..., ..."
};

// Parameters, Adam moments and gradients; one gradient partial per chunk of sequences; the
// per-thread workspaces of the training and test runners (Transformer::workspace_sizes); one
// training batch and the fixed test set (tokens, labels and states).
MemoryEstimate estimate_training_memory(const RunConfig& cfg, int threads);

// MemAvailable of /proc/meminfo in bytes; 0 if it cannot be read.
double available_memory_bytes();

// Throws Error (bad input) if the estimate exceeds `available` bytes (> 0), naming both and the
// breakdown.
void check_training_memory(const RunConfig& cfg, int threads, double available);

}  // namespace mesalab
