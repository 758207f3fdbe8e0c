#pragma once
// Shared test helpers: fixture loading, nested-list flattening, and one comparison
// harness that prints the max abs / rel difference on failure.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mesalab::testing {

// Parsed tests/fixtures/reference_grads.json (cached after the first call).
const nlohmann::json& reference_fixture();

// Row-major flattening of a nested JSON list of numbers.
std::vector<double> flatten(const nlohmann::json& nested);

struct DiffStats {
  double max_abs = 0.0;
  double max_rel = 0.0;  // |a-b| / max(|a|, |b|, floor)
  size_t worst_index = 0;
};
DiffStats compare(const double* actual, const double* expected, size_t n, double rel_floor = 1e-12);

}  // namespace mesalab::testing

// Expects two arrays to agree to a relative tolerance; prints where they differ most.
#define EXPECT_ALL_CLOSE(actual, expected, n, rel_tol)                                     \
  do {                                                                                     \
    const auto _d = ::mesalab::testing::compare((actual), (expected), (n));                \
    EXPECT_LE(_d.max_rel, (rel_tol)) << "max abs diff " << _d.max_abs << ", max rel diff " \
                                     << _d.max_rel << " at index " << _d.worst_index;      \
  } while (0)
