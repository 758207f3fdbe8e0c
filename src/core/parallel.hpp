#pragma once
// OpenMP loop whose body may throw: exceptions are caught per index (an exception must not
// leave an OpenMP region) and the one of the smallest index is re-thrown on the calling
// thread afterwards, so even the error message does not depend on the thread count.
#include <exception>
#include <vector>

namespace mesalab {

// Calls fn(i) for i = 0..n-1 in parallel, one index at a time (dynamic schedule).
template <class Fn>
void parallel_for(int n, Fn&& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n > 0 ? n : 0));
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < n; ++i) {
    try {
      fn(i);
    } catch (...) {
      errors[size_t(i)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace mesalab
