#include "arrays.hpp"

#include <fmt/format.h>

namespace mesalab::python {

std::string shape_string(const py::array& a) {
  std::string out = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) out += fmt::format("{}{}", i ? ", " : "", a.shape(i));
  return out + (a.ndim() == 1 ? ",)" : ")");
}

void require_ndim(const py::array& a, int ndim, const char* what) {
  if (a.ndim() != ndim)
    fail("{} must have {} dimensions, got shape {}", what, ndim, shape_string(a));
}

void require_params(const py::array& params, size_t count) {
  if (params.ndim() != 1 || size_t(params.shape(0)) != count)
    fail("params must be a 1-d array of the model's {} parameters, got shape {}", count,
         shape_string(params));
}

}  // namespace mesalab::python
