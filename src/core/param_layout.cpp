#include "core/param_layout.hpp"

#include <cmath>

#include "core/error.hpp"

namespace mesalab {

size_t ParamLayout::add(std::string name, std::vector<int64_t> shape) {
  if (find(name)) fail("duplicate parameter name '{}'", name);
  size_t size = 1;
  for (int64_t d : shape) {
    if (d <= 0) fail("parameter '{}' has a non-positive dimension", name);
    size *= size_t(d);
  }
  specs_.push_back(ParamSpec{std::move(name), std::move(shape), total_, size});
  total_ += size;
  return specs_.back().offset;
}

const ParamSpec* ParamLayout::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

const ParamSpec& ParamLayout::at(const std::string& name) const {
  const ParamSpec* s = find(name);
  if (!s) fail("unknown parameter '{}'", name);
  return *s;
}

template <class S>
size_t first_non_finite(const S* values, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(values[i])) return i;
  return n;
}

template size_t first_non_finite<float>(const float*, size_t);
template size_t first_non_finite<double>(const double*, size_t);

}  // namespace mesalab
