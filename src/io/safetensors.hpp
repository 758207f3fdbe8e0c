#pragma once
// The safetensors checkpoint format, readable by Python's `safetensors` library:
//   8 bytes   little-endian u64 N
//   N bytes   JSON header {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
//             ..., "__metadata__": {"key": "value", ...}}, padded with spaces to a multiple
//             of 8 so that the data buffer starts 8-byte aligned
//   rest      data buffer; offsets are relative to its start; tensors tile it exactly
// Tensor data is little-endian and row-major. Tensor names are the ParamLayout names.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mesalab {

// The subset of safetensors dtypes mesalab reads and writes.
enum class DType { F32, F64, I64, I32, U8 };

std::string_view dtype_name(DType dtype);  // "F32", ... as spelled in the header
size_t dtype_size(DType dtype);            // bytes per element

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian, row-major; size == product(shape) * dtype_size
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<Tensor> tensors;  // in data-buffer order
  // Where the file came from ("" if built in memory); prefixes the get_* error messages.
  std::string source;

  const Tensor* find(const std::string& name) const;

  // Append a tensor copied from `data` (product(shape) elements). Throws Error on a
  // duplicate name or a negative/overflowing shape.
  void add_f32(std::string name, std::vector<int64_t> shape, const float* data);
  void add_f64(std::string name, std::vector<int64_t> shape, const double* data);
  void add_i64(std::string name, std::vector<int64_t> shape, const int64_t* data);

  // Copies the tensor out. Throws Error naming the tensor (and `source`) if it is missing,
  // has another dtype, or its shape differs from `expected_shape`.
  std::vector<float> get_f32(const std::string& name,
                             const std::vector<int64_t>& expected_shape) const;
  std::vector<double> get_f64(const std::string& name,
                              const std::vector<int64_t>& expected_shape) const;
  std::vector<int64_t> get_i64(const std::string& name,
                               const std::vector<int64_t>& expected_shape) const;
};

// The file's bytes: tensors in the order given, contiguous; "__metadata__" is written first
// and only when non-empty (as the reference implementation does). Throws Error if a tensor's
// byte size does not match its shape, a name repeats or is "__metadata__", or a string is
// not valid UTF-8.
std::string serialize_safetensors(const SafetensorsFile& file);

// Validates everything (header bounds, JSON structure, dtypes, shapes, offsets, full
// coverage of the data buffer) before copying any tensor data. Never reads out of bounds;
// every failure is an Error with a single-line message starting with `source_name`.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& source_name);

// FNV-1a (64 bit) over every tensor's name, dtype, shape and bytes in buffer order, as 16
// lowercase hex digits: a checksum of the data section that also covers what it means.
std::string tensor_data_checksum(const SafetensorsFile& file);

void save_safetensors(const std::filesystem::path& path, const SafetensorsFile& file);  // atomic
SafetensorsFile load_safetensors(const std::filesystem::path& path);

}  // namespace mesalab
