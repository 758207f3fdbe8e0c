#pragma once
// Parameters live in one contiguous buffer; this registry names the slices of it.
// The optimizer is one loop over the buffer, gradients share the layout, and safetensors
// tensor names are the registry names.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mesalab {

struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  size_t offset = 0;  // in elements from the start of the buffer
  size_t size = 0;    // product of shape
};

class ParamLayout {
 public:
  // Appends a tensor; returns its offset. Names must be unique.
  size_t add(std::string name, std::vector<int64_t> shape);
  const ParamSpec& at(const std::string& name) const;  // throws Error if absent
  const ParamSpec* find(const std::string& name) const;
  const std::vector<ParamSpec>& specs() const { return specs_; }
  size_t total() const { return total_; }

 private:
  std::vector<ParamSpec> specs_;
  size_t total_ = 0;
};

// Index of the first element of `values` (length n) that is not finite, or n if all are.
template <class S>
size_t first_non_finite(const S* values, size_t n);

}  // namespace mesalab
