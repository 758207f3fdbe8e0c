#pragma once
// numpy arrays in and out of the module.
// Out: a result std::vector is moved into a capsule that owns it and the array views its
// memory, so no element is copied. In: CArray<T> is a C-contiguous array of T; pybind11
// hands over the caller's array itself when its dtype and layout already match (no copy) and
// converts it once otherwise (another dtype, a transposed or sliced view).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
// Every binding takes optional arguments and returns lists: the std:: type casters.
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace mesalab::python {

namespace py = pybind11;

template <class T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A numpy array of `shape` that owns `values` (product(shape) elements).
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  py::ssize_t count = 1;
  for (py::ssize_t n : shape) count *= n;
  if (size_t(count) != values.size())
    fail("internal: {} values for an array of {} elements", values.size(), count);
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), owned->data(), owner);
}

// A 1-d array (a per-time-step curve, a list of values).
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& values) {
  const auto n = py::ssize_t(values.size());
  return to_numpy(std::move(values), {n});
}

// The array's shape, for messages: "(2, 3, 4)".
std::string shape_string(const py::array& a);

// Checks a.ndim() == ndim (ValueError naming `what` and the shape otherwise).
void require_ndim(const py::array& a, int ndim, const char* what);

// The parameter buffer of a model with `count` parameters: 1-d float32 of that length.
void require_params(const py::array& params, size_t count);

}  // namespace mesalab::python
