#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

namespace mesalab::testing {

const nlohmann::json& reference_fixture() {
  static const nlohmann::json fixture = [] {
    std::ifstream in(std::string(MESALAB_FIXTURES_DIR) + "/reference_grads.json");
    if (!in) throw std::runtime_error("cannot open reference_grads.json");
    return nlohmann::json::parse(in);
  }();
  return fixture;
}

static void flatten_into(const nlohmann::json& j, std::vector<double>& out) {
  if (j.is_array()) {
    for (const auto& e : j) flatten_into(e, out);
  } else {
    out.push_back(j.get<double>());
  }
}

std::vector<double> flatten(const nlohmann::json& nested) {
  std::vector<double> out;
  flatten_into(nested, out);
  return out;
}

DiffStats compare(const double* actual, const double* expected, size_t n, double rel_floor) {
  DiffStats d;
  for (size_t i = 0; i < n; ++i) {
    const double abs_diff = std::abs(actual[i] - expected[i]);
    const double scale = std::max({std::abs(actual[i]), std::abs(expected[i]), rel_floor});
    const double rel = std::isnan(abs_diff) ? INFINITY : abs_diff / scale;
    if (rel > d.max_rel) {
      d.max_rel = rel;
      d.worst_index = i;
    }
    d.max_abs = std::max(d.max_abs, abs_diff);
  }
  return d;
}

}  // namespace mesalab::testing
