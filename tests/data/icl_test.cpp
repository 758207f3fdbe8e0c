// In-context task data: the three formats on hand-written examples, the task statistics, and
// bad input.
#include "data/icl.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"

namespace mesalab {
namespace {

IclConfig config(int seq_len, IclFormat format, int prefix_len = 0) {
  IclConfig c;
  c.dim = 1;
  c.seq_len = seq_len;
  c.format = format;
  c.prefix_len = prefix_len;
  return c;
}

// One task of dim 1 with x_j = j and y_j = 10 j, so every token names itself.
IclTasks counting_task(int pairs) {
  IclTasks t{1, pairs, 1, {}, {}};
  for (int j = 1; j <= pairs; ++j) {
    t.x.push_back(j);
    t.y.push_back(10 * j);
  }
  return t;
}

std::vector<double> sequence_of(const IclConfig& c, const std::vector<double>& eos = {},
                                const std::vector<double>& prefix = {}) {
  return format_icl_batch(c, counting_task(c.seq_len / 2), eos, prefix).sequences;
}

TEST(Icl, PlainFormatInterleavesThePairs) {
  const IclLayout even = icl_layout(config(8, IclFormat::Plain));
  EXPECT_EQ(even.length, 7);
  EXPECT_EQ(even.x_positions, (std::vector<int>{0, 2, 4, 6}));
  EXPECT_EQ(sequence_of(config(8, IclFormat::Plain)),
            (std::vector<double>{1, 10, 2, 20, 3, 30, 4, 40}));
  // Odd T: a copy of the last x closes the sequence.
  const IclLayout odd = icl_layout(config(7, IclFormat::Plain));
  EXPECT_EQ(odd.length, 6);
  EXPECT_EQ(odd.x_positions, (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(sequence_of(config(7, IclFormat::Plain)),
            (std::vector<double>{1, 10, 2, 20, 3, 30, 3}));
}

TEST(Icl, EosFormatClosesEveryPairWithTheEosToken) {
  const IclConfig c = config(9, IclFormat::Eos);
  const IclLayout lay = icl_layout(c);
  EXPECT_EQ(lay.length, 8);
  EXPECT_EQ(lay.x_positions, (std::vector<int>{0, 3, 6}));
  EXPECT_EQ(lay.eos_positions, (std::vector<int>{2, 5}));  // the last EOS is only a label
  EXPECT_EQ(sequence_of(c, {-1}), (std::vector<double>{1, 10, -1, 2, 20, -1, 3, 30, -1}));
}

TEST(Icl, PrefixFormatIsTruncatedToThePlainLength) {
  const IclConfig c = config(9, IclFormat::Prefix, 2);
  const IclLayout lay = icl_layout(c);
  EXPECT_EQ(lay.length, 8);  // min(2 + 3*3 - 1, 9 - 1)
  EXPECT_EQ(lay.prefix, 2);
  EXPECT_EQ(lay.x_positions, (std::vector<int>{2, 5}));
  EXPECT_EQ(lay.eos_positions, (std::vector<int>{4, 7}));
  EXPECT_EQ(sequence_of(c, {-1}, {-7, -8}), (std::vector<double>{-7, -8, 1, 10, -1, 2, 20, -1, 3}));
}

TEST(Icl, TokensAndLabelsAreTheSequenceShiftedByOne) {
  const IclConfig c = config(9, IclFormat::Eos);
  const IclBatch b = format_icl_batch(c, counting_task(4), {-1}, {});
  std::vector<float> tokens, labels;
  icl_tokens(b, tokens, labels);
  EXPECT_EQ(tokens, (std::vector<float>{1, 10, -1, 2, 20, -1, 3, 30}));
  EXPECT_EQ(labels, (std::vector<float>{10, -1, 2, 20, -1, 3, 30, -1}));
}

// y = W x with W orthogonal: |y_j| = |x_j| without noise; x in [-range, range]; tasks differ
// between sequences and are reproducible; noise adds variance noise^2 per channel.
TEST(Icl, TasksAreOrthogonalMapsOfUniformInputs) {
  IclConfig c;
  c.dim = 5;
  c.seq_len = 40;
  c.range = 2.0;
  const IclTasks a = draw_icl_tasks(c, 7, RngPurpose::Icl, 0, 64);
  ASSERT_EQ(a.pairs, 20);
  double x_max = 0, sum_sq = 0;
  for (int b = 0; b < a.batch; ++b)
    for (int j = 0; j < a.pairs; ++j) {
      double nx = 0, ny = 0;
      for (int d = 0; d < c.dim; ++d) {
        const size_t i = (size_t(b) * a.pairs + j) * c.dim + d;
        nx += a.x[i] * a.x[i];
        ny += a.y[i] * a.y[i];
        x_max = std::max(x_max, std::abs(a.x[i]));
        sum_sq += a.x[i] * a.x[i];
      }
      EXPECT_NEAR(std::sqrt(ny), std::sqrt(nx), 1e-12);
    }
  EXPECT_LE(x_max, 2.0);
  EXPECT_GT(x_max, 1.9);
  // U[-r, r] has variance r^2 / 3.
  EXPECT_NEAR(sum_sq / double(a.x.size()), 4.0 / 3.0, 0.05);
  const IclTasks again = draw_icl_tasks(c, 7, RngPurpose::Icl, 0, 64);
  EXPECT_EQ(again.y, a.y);
  const IclTasks other = draw_icl_tasks(c, 7, RngPurpose::Prompt, 0, 64);
  EXPECT_NE(other.x, a.x);
  EXPECT_NE(std::vector<double>(a.y.begin(), a.y.begin() + 100),
            std::vector<double>(a.y.begin() + 100, a.y.begin() + 200));

  c.noise = 0.5;
  const IclTasks noisy = draw_icl_tasks(c, 7, RngPurpose::Icl, 0, 64);
  EXPECT_EQ(noisy.x, a.x);  // the noise is drawn after the inputs
  double noise_sq = 0;
  for (size_t i = 0; i < a.y.size(); ++i) noise_sq += (noisy.y[i] - a.y[i]) * (noisy.y[i] - a.y[i]);
  EXPECT_NEAR(noise_sq / double(a.y.size()), 0.25, 0.02);
}

// A switch at k keeps the first task's draws and maps the examples from k on by a second
// orthogonal W' (norms kept, values changed).
TEST(Icl, TaskSwitchKeepsTheFirstTaskAndMapsTheRestByANewOne) {
  IclConfig c;
  c.dim = 4;
  c.seq_len = 30;
  const IclTasks one = draw_icl_tasks(c, 3, RngPurpose::Icl, 0, 8);
  c.switch_pair = 4;
  const IclTasks two = draw_icl_tasks(c, 3, RngPurpose::Icl, 0, 8);
  EXPECT_EQ(two.x, one.x);
  for (int b = 0; b < 8; ++b)
    for (int j = 0; j < one.pairs; ++j) {
      double diff = 0, n_one = 0, n_two = 0;
      for (int d = 0; d < c.dim; ++d) {
        const size_t i = (size_t(b) * one.pairs + j) * c.dim + d;
        diff += std::abs(two.y[i] - one.y[i]);
        n_one += one.y[i] * one.y[i];
        n_two += two.y[i] * two.y[i];
      }
      EXPECT_NEAR(n_two, n_one, 1e-12);
      if (j < 4)
        EXPECT_EQ(diff, 0.0) << "b " << b << " j " << j;
      else
        EXPECT_GT(diff, 1e-3) << "b " << b << " j " << j;
    }
  c.switch_pair = 10;  // T/3: the EOS format would have no example of the second task
  EXPECT_THROW(c.validate(), Error);
}

TEST(Icl, BadInputIsAClearError) {
  EXPECT_THROW(icl_layout(config(5, IclFormat::Plain)), Error);
  EXPECT_THROW(icl_layout(config(9, IclFormat::Prefix, 0)), Error);
  EXPECT_THROW(icl_layout(config(9, IclFormat::Prefix, 8)), Error);  // longer than the context
  EXPECT_THROW(format_icl_batch(config(9, IclFormat::Eos), counting_task(4), {}, {}), Error);
  EXPECT_THROW(format_icl_batch(config(9, IclFormat::Prefix, 2), counting_task(4), {-1}, {1}),
               Error);
  EXPECT_THROW(format_icl_batch(config(9, IclFormat::Eos), counting_task(3), {-1}, {}), Error);
  EXPECT_THROW(parse_icl_format("eos2"), Error);
}

}  // namespace
}  // namespace mesalab
