#pragma once
// Batches of model inputs: the sequences drawn for (seed, purpose, step), as tokens of one
// format. Sequences are drawn in parallel straight into the token and label buffers, each
// from its own stream, so a batch is bit-identical for any thread count.
#include <cstdint>
#include <vector>

#include "core/rng.hpp"
#include "data/sequences.hpp"
#include "data/tokens.hpp"

namespace mesalab {

// What a batch is made of: the data config, the token format and its width (4 dim for the
// constructed formats, dim for raw, embed_dim for delay tokens).
struct TokenSource {
  DataConfig data;
  TokenFormat format = TokenFormat::Constructed;
  int width = 0;
};

struct TokenBatch {
  int batch = 0, seq_len = 0;
  int dim = 0;                 // O: observed dim (the model predicts o_{t+1})
  int width = 0;               // token width
  std::vector<double> states;  // (B, T+1, O): the observations; empty if not kept
  std::vector<float> tokens;   // (B, T, width)
  std::vector<float> labels;   // (B, T, O)
};

// Overwrites `out` with the batch of (seed, purpose, step), reusing its buffers: a training
// loop that calls it every step allocates nothing after the first. keep_states = false leaves
// out.states empty (training needs only tokens and labels).
void fill_token_batch(const TokenSource& source, uint64_t seed, RngPurpose purpose, uint64_t step,
                      int batch, TokenBatch& out, bool keep_states = true);

}  // namespace mesalab
