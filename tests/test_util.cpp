#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "core/rng.hpp"

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

std::vector<double> random_vector(size_t n, uint64_t seed, double mean, double stddev) {
  Rng rng{seed};
  std::vector<double> v(n);
  for (double& x : v) x = mean + stddev * rng.normal();
  return v;
}

double norm(const std::vector<double>& a) {
  double s = 0;
  for (double x : a) s += x * x;
  return std::sqrt(s);
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const double r = norm(d) / std::max(norm(b), 1e-300);
  return std::isnan(r) ? INFINITY : r;
}

double max_rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return std::isnan(diff) ? INFINITY : diff / scale;
}

std::vector<double> finite_differences(std::vector<double>& x, const std::function<double()>& f) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i], step = 1e-6 * std::max(1.0, std::abs(x0));
    x[i] = x0 + step;
    const double up = f();
    x[i] = x0 - step;
    const double down = f();
    x[i] = x0;
    grad[i] = (up - down) / (2 * step);
  }
  return grad;
}

}  // namespace mesalab::testing
