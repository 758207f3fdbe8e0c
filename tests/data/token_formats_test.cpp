// Raw and delay-embedded tokens (SPEC_EXPERIMENTS.md 1d, 1e) on hand-written examples.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/tokens.hpp"

namespace mesalab {
namespace {

// Two sequences of T + 1 = 5 observations in R^2: sequence 0 holds o_t = (2t - 1, 2t),
// sequence 1 the same plus 100.
std::vector<double> tiny_states() {
  std::vector<double> s;
  for (int b = 0; b < 2; ++b) {
    for (int t = 1; t <= 5; ++t) {
      s.push_back(100.0 * b + 2 * t - 1);
      s.push_back(100.0 * b + 2 * t);
    }
  }
  return s;
}

template <class S>
void check_raw() {
  const std::vector<double> states = tiny_states();
  std::vector<S> tokens(2 * 4 * 2, S(-1)), labels(2 * 4 * 2, S(-1));
  build_raw_tokens<S>(states.data(), 2, 4, 2, tokens.data(), labels.data());
  const std::vector<S> expected_tokens = {1,   2,   3,   4,   5,   6,   7,   8,
                                          101, 102, 103, 104, 105, 106, 107, 108};
  const std::vector<S> expected_labels = {3,   4,   5,   6,   7,   8,   9,   10,
                                          103, 104, 105, 106, 107, 108, 109, 110};
  EXPECT_EQ(tokens, expected_tokens);
  EXPECT_EQ(labels, expected_labels);
}

TEST(TokensRaw, LayoutDouble) { check_raw<double>(); }
TEST(TokensRaw, LayoutFloat) { check_raw<float>(); }

// Values that float cannot hold exactly: each token and label is the nearest float of the
// state at its index (e_t = o_t, label_t = o_{t+1}), not a truncation or a neighbour.
TEST(TokensRaw, FloatTokensAreTheRoundedStates) {
  const std::vector<double> states = {0.1, 1.0 / 3.0, -2.7, 1e-9, 5.5, 6.25};  // T = 2, dim 2
  std::vector<float> tok(4), lab(4);
  build_raw_tokens(states.data(), 1, 2, 2, tok.data(), lab.data());
  EXPECT_EQ(tok, (std::vector<float>{0.1f, 1.0f / 3.0f, -2.7f, 1e-9f}));
  EXPECT_EQ(lab, (std::vector<float>{-2.7f, 1e-9f, 5.5f, 6.25f}));
}

// obs_dim 2, embed 7: slots = 3 and one remainder channel.
//   e_t = [o_t, o_{t-1}, o_{t-2}, 0] with o_j = 0 for j < 1.
template <class S>
void check_delay() {
  const std::vector<double> states = tiny_states();
  constexpr int kE = 7;
  std::vector<S> tokens(2 * 4 * kE, S(-1)), labels(2 * 4 * 2, S(-1));
  build_delay_tokens<S>(states.data(), 2, 4, 2, kE, tokens.data(), labels.data());
  const std::vector<S> expected_seq0 = {
      1, 2, 0, 0, 0, 0, 0,  // t = 1: nothing before the start
      3, 4, 1, 2, 0, 0, 0,  // t = 2
      5, 6, 3, 4, 1, 2, 0,  // t = 3
      7, 8, 5, 6, 3, 4, 0,  // t = 4: o_1 no longer fits
  };
  const std::vector<S> expected_seq1 = {
      101, 102, 0,   0,   0,   0,   0,  //
      103, 104, 101, 102, 0,   0,   0,  //
      105, 106, 103, 104, 101, 102, 0,  //
      107, 108, 105, 106, 103, 104, 0,  //
  };
  EXPECT_EQ(std::vector<S>(tokens.begin(), tokens.begin() + 4 * kE), expected_seq0);
  EXPECT_EQ(std::vector<S>(tokens.begin() + 4 * kE, tokens.end()), expected_seq1);
  const std::vector<S> expected_labels = {3,   4,   5,   6,   7,   8,   9,   10,
                                          103, 104, 105, 106, 107, 108, 109, 110};
  EXPECT_EQ(labels, expected_labels);
}

TEST(TokensDelay, LayoutDouble) { check_delay<double>(); }
TEST(TokensDelay, LayoutFloat) { check_delay<float>(); }

// With embed_dim = obs_dim there is one slot and the delay tokens are the raw tokens; an exact
// multiple leaves no remainder channel and the window covers the whole history.
TEST(TokensDelay, EdgeSlotCounts) {
  const std::vector<double> states = tiny_states();
  std::vector<double> raw_t(16), raw_l(16), del_t(16, -1.0), del_l(16, -1.0);
  build_raw_tokens(states.data(), 2, 4, 2, raw_t.data(), raw_l.data());
  build_delay_tokens(states.data(), 2, 4, 2, 2, del_t.data(), del_l.data());
  EXPECT_EQ(raw_t, del_t);
  EXPECT_EQ(raw_l, del_l);

  std::vector<double> full(2 * 4 * 8, -1.0), labels(16);
  build_delay_tokens(states.data(), 2, 4, 2, 8, full.data(), labels.data());
  const std::vector<double> last_seq0 = {7, 8, 5, 6, 3, 4, 1, 2};
  EXPECT_EQ(std::vector<double>(full.begin() + 3 * 8, full.begin() + 4 * 8), last_seq0);
}

TEST(TokensDelay, RejectsBadShape) {
  std::vector<double> buf(256);
  EXPECT_THROW(build_delay_tokens(buf.data(), 1, 2, 3, 2, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_delay_tokens(buf.data(), 0, 2, 1, 2, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_delay_tokens(buf.data(), 1, 0, 1, 2, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_delay_tokens(buf.data(), 1, 2, 0, 2, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_raw_tokens(buf.data(), 1, 2, 0, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_raw_tokens(buf.data(), 0, 2, 1, buf.data(), buf.data()), Error);
  EXPECT_THROW(build_raw_tokens(buf.data(), 1, 0, 1, buf.data(), buf.data()), Error);
}

// mask_inputs: [0, 0, s_t, s_{t-1}], the constructed tokens with slot 1 zeroed.
TEST(TokensFormat, MaskedConstructedTokensZeroTheFirstStateSlot) {
  const std::vector<double> states = tiny_states();  // (2, 5, 2)
  std::vector<double> full(2 * 4 * 8), masked(2 * 4 * 8), lf(16), lm(16);
  build_constructed_tokens(states.data(), 2, 4, 2, full.data(), lf.data());
  build_tokens(TokenFormat::ConstructedMasked, states.data(), 2, 4, 2, 8, masked.data(), lm.data());
  EXPECT_EQ(lf, lm);
  for (int n = 0; n < 8; ++n)
    for (int c = 0; c < 8; ++c) {
      const double want = (c == 2 || c == 3) ? 0.0 : full[size_t(n) * 8 + c];
      EXPECT_EQ(masked[size_t(n) * 8 + c], want) << n << " " << c;
    }
  // Token t = 2 of sequence 0 by hand: [0, 0, 0, 0, s_2, s_1].
  const double* s = states.data();
  EXPECT_EQ(masked[1 * 8 + 4], s[1 * 2 + 0]);
  EXPECT_EQ(masked[1 * 8 + 7], s[0 * 2 + 1]);
  EXPECT_EQ(parse_token_format("constructed_masked"), TokenFormat::ConstructedMasked);
  EXPECT_TRUE(is_constructed(TokenFormat::ConstructedMasked));
  EXPECT_FALSE(is_constructed(TokenFormat::Raw));
}

// build_tokens dispatches to the builder of each format and checks the width.
TEST(TokensFormat, DispatchMatchesBuildersAndChecksWidth) {
  const std::vector<double> states = tiny_states();
  std::vector<float> a(2 * 4 * 8), b(2 * 4 * 8), la(16), lb(16);
  build_tokens(TokenFormat::Constructed, states.data(), 2, 4, 2, 8, a.data(), la.data());
  build_constructed_tokens(states.data(), 2, 4, 2, b.data(), lb.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(la, lb);
  build_tokens(TokenFormat::Raw, states.data(), 2, 4, 2, 2, a.data(), la.data());
  build_raw_tokens(states.data(), 2, 4, 2, b.data(), lb.data());
  EXPECT_EQ(std::vector<float>(a.begin(), a.begin() + 16),
            std::vector<float>(b.begin(), b.begin() + 16));
  EXPECT_EQ(la, lb);
  build_tokens(TokenFormat::Delay, states.data(), 2, 4, 2, 7, a.data(), la.data());
  build_delay_tokens(states.data(), 2, 4, 2, 7, b.data(), lb.data());
  EXPECT_EQ(std::vector<float>(a.begin(), a.begin() + 56),
            std::vector<float>(b.begin(), b.begin() + 56));
  EXPECT_EQ(la, lb);
  EXPECT_THROW(
      build_tokens(TokenFormat::Constructed, states.data(), 2, 4, 2, 6, a.data(), la.data()),
      Error);
  EXPECT_THROW(build_tokens(TokenFormat::Raw, states.data(), 2, 4, 2, 3, a.data(), la.data()),
               Error);
  EXPECT_THROW(build_tokens(TokenFormat::Delay, states.data(), 2, 4, 2, 1, a.data(), la.data()),
               Error);
}

TEST(TokensFormat, NamesRoundTrip) {
  for (TokenFormat f : {TokenFormat::Constructed, TokenFormat::Raw, TokenFormat::Delay}) {
    EXPECT_EQ(parse_token_format(token_format_name(f)), f);
  }
  EXPECT_EQ(token_format_name(TokenFormat::Delay), "delay");
  try {
    parse_token_format("constructd");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("constructed, raw, delay"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mesalab
