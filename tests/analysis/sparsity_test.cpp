// fraction_above on hand-made matrices, and weight_sparsity on block-scalar weights.
#include "analysis/sparsity.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace mesalab {
namespace {

TEST(Sparsity, FractionAboveCountsEntriesStrictlyAboveTheRelativeCut) {
  RowMatrix<double> m(2, 4);
  m << 10.0, -0.1, 0.0, 0.11,  //
      -5.0, 0.05, 0.1, -10.0;
  // cut at 1% of 10 = 0.1: entries with |m| > 0.1 are 10, 0.11, -5, -10
  EXPECT_DOUBLE_EQ(fraction_above(m, 0.01), 4.0 / 8.0);
  EXPECT_DOUBLE_EQ(fraction_above(m, 0.0), 7.0 / 8.0);  // every non-zero entry
  EXPECT_DOUBLE_EQ(fraction_above(m, 0.6), 2.0 / 8.0);
  EXPECT_DOUBLE_EQ(fraction_above(RowMatrix<double>::Zero(3, 3), 0.01), 0.0);
  EXPECT_THROW(fraction_above(m, -1.0), Error);
}

TEST(Sparsity, ScaledIdentityBlocksAreOneInDOfTheEntries) {
  const int D = 5;
  RowMatrix<double> m = RowMatrix<double>::Zero(4 * D, 4 * D);
  for (int j = 0; j < D; ++j) {
    m(D + j, 3 * D + j) = 2.0;  // block (1, 3) = 2 I
    m(2 * D + j, j) = -1.0;     // block (2, 0) = -I
  }
  EXPECT_DOUBLE_EQ(fraction_above(m, 0.01), 2.0 * D / (16.0 * D * D));
}

}  // namespace
}  // namespace mesalab
