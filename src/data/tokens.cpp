#include "data/tokens.hpp"

#include <cmath>
#include <cstddef>

#include "core/error.hpp"

namespace mesalab {

// tokens[b, t-1] = [0, s_t (0 if masked), s_t, s_{t-1}],  labels[b, t-1] = s_{t+1},  t = 1..T.
template <class S>
void build_constructed_tokens(const double* states, int batch, int seq_len, int dim, S* tokens,
                              S* labels, bool masked) {
  if (batch < 1 || seq_len < 1 || dim < 1) {
    fail("build_constructed_tokens: batch, seq_len and dim must be >= 1, got {}, {}, {}", batch,
         seq_len, dim);
  }
  const size_t d = size_t(dim);
  const size_t e = 4 * d;
  for (size_t b = 0; b < size_t(batch); ++b) {
    const double* seq = states + b * (size_t(seq_len) + 1) * d;
    // Row k (0-based) is time t = k + 1; state s_t is stored at row t - 1 = k of `seq`.
    for (size_t k = 0; k < size_t(seq_len); ++k) {
      const double* s_t = seq + k * d;
      const double* s_prev = k == 0 ? nullptr : s_t - d;  // s_0 = 0
      const double* s_next = s_t + d;
      S* tok = tokens + (b * size_t(seq_len) + k) * e;
      S* lab = labels + (b * size_t(seq_len) + k) * d;
      for (size_t i = 0; i < d; ++i) {
        tok[i] = S(0);
        tok[d + i] = masked ? S(0) : S(s_t[i]);
        tok[2 * d + i] = S(s_t[i]);
        tok[3 * d + i] = s_prev == nullptr ? S(0) : S(s_prev[i]);
        lab[i] = S(s_next[i]);
      }
    }
  }
}

// tokens[b, t-1] = o_t,  labels[b, t-1] = o_{t+1},  t = 1..T.
template <class S>
void build_raw_tokens(const double* states, int batch, int seq_len, int dim, S* tokens, S* labels) {
  if (batch < 1 || seq_len < 1 || dim < 1) {
    fail("build_raw_tokens: batch, seq_len and dim must be >= 1, got {}, {}, {}", batch, seq_len,
         dim);
  }
  const size_t d = size_t(dim);
  const size_t t_len = size_t(seq_len);
  for (size_t b = 0; b < size_t(batch); ++b) {
    const double* seq = states + b * (t_len + 1) * d;
    S* tok = tokens + b * t_len * d;
    S* lab = labels + b * t_len * d;
    // Tokens are rows 0..T-1 of the sequence and labels rows 1..T: the same buffer shifted.
    for (size_t i = 0; i < t_len * d; ++i) {
      tok[i] = S(seq[i]);
      lab[i] = S(seq[d + i]);
    }
  }
}

// tokens[b, t-1, j m + i] = o_{t-j}[i] for j < n (0 if t - j < 1), 0 for channels >= n m;
// labels[b, t-1] = o_{t+1}.
template <class S>
void build_delay_tokens(const double* states, int batch, int seq_len, int obs_dim, int embed_dim,
                        S* tokens, S* labels) {
  if (batch < 1 || seq_len < 1 || obs_dim < 1) {
    fail("build_delay_tokens: batch, seq_len and obs_dim must be >= 1, got {}, {}, {}", batch,
         seq_len, obs_dim);
  }
  if (embed_dim < obs_dim) {
    fail("build_delay_tokens: embed_dim ({}) must be >= obs_dim ({}) to hold one slot", embed_dim,
         obs_dim);
  }
  const size_t m = size_t(obs_dim);
  const size_t e = size_t(embed_dim);
  const size_t slots = e / m;
  const size_t t_len = size_t(seq_len);
  for (size_t b = 0; b < size_t(batch); ++b) {
    const double* seq = states + b * (t_len + 1) * m;
    // Row k (0-based) is time t = k + 1; o_{t-j} is row k - j of `seq`, absent when j > k.
    for (size_t k = 0; k < t_len; ++k) {
      S* tok = tokens + (b * t_len + k) * e;
      for (size_t j = 0; j < slots; ++j) {
        S* slot = tok + j * m;
        if (j > k) {
          for (size_t i = 0; i < m; ++i) slot[i] = S(0);
        } else {
          const double* o = seq + (k - j) * m;
          for (size_t i = 0; i < m; ++i) slot[i] = S(o[i]);
        }
      }
      for (size_t c = slots * m; c < e; ++c) tok[c] = S(0);
      S* lab = labels + (b * t_len + k) * m;
      const double* next = seq + (k + 1) * m;
      for (size_t i = 0; i < m; ++i) lab[i] = S(next[i]);
    }
  }
}

std::string_view token_format_name(TokenFormat format) {
  switch (format) {
    case TokenFormat::Constructed:
      return "constructed";
    case TokenFormat::Raw:
      return "raw";
    case TokenFormat::Delay:
      return "delay";
    case TokenFormat::ConstructedMasked:
      return "constructed_masked";
  }
  fail("token_format_name: invalid TokenFormat value {}", int(format));
}

TokenFormat parse_token_format(std::string_view name) {
  for (TokenFormat format : {TokenFormat::Constructed, TokenFormat::Raw, TokenFormat::Delay,
                             TokenFormat::ConstructedMasked}) {
    if (token_format_name(format) == name) return format;
  }
  fail(
      "unknown token format '{}' (data.tokens); allowed: constructed, raw, delay, "
      "constructed_masked",
      name);
}

template <class S>
void build_tokens(TokenFormat format, const double* states, int batch, int seq_len, int dim,
                  int width, S* tokens, S* labels) {
  switch (format) {
    case TokenFormat::Constructed:
    case TokenFormat::ConstructedMasked:
      if (width != 4 * dim) {
        fail("build_tokens: constructed tokens need width 4 * dim = {}, got {}", 4 * dim, width);
      }
      build_constructed_tokens(states, batch, seq_len, dim, tokens, labels,
                               format == TokenFormat::ConstructedMasked);
      return;
    case TokenFormat::Raw:
      if (width != dim) fail("build_tokens: raw tokens need width dim = {}, got {}", dim, width);
      build_raw_tokens(states, batch, seq_len, dim, tokens, labels);
      return;
    case TokenFormat::Delay:
      build_delay_tokens(states, batch, seq_len, dim, width, tokens, labels);
      return;
  }
  fail("build_tokens: invalid TokenFormat value {}", int(format));
}

template void build_constructed_tokens<float>(const double*, int, int, int, float*, float*, bool);
template void build_constructed_tokens<double>(const double*, int, int, int, double*, double*,
                                               bool);
template void build_raw_tokens<float>(const double*, int, int, int, float*, float*);
template void build_raw_tokens<double>(const double*, int, int, int, double*, double*);
template void build_delay_tokens<float>(const double*, int, int, int, int, float*, float*);
template void build_delay_tokens<double>(const double*, int, int, int, int, double*, double*);
template void build_tokens<float>(TokenFormat, const double*, int, int, int, int, float*, float*);
template void build_tokens<double>(TokenFormat, const double*, int, int, int, int, double*,
                                   double*);

}  // namespace mesalab
