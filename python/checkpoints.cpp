// Checkpoints (a run's state) and plain safetensors files of numpy arrays.
#include <pybind11/stl.h>

#include <bit>
#include <map>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "convert.hpp"
#include "io/safetensors.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace mesalab::python {

namespace {

namespace fs = std::filesystem;

// {"model", "config", "step", "params", "adam_m", "adam_v", ...}; the arrays own the loaded
// buffers (no copy).
py::dict state_dict(std::unique_ptr<Model> model, TrainState&& state) {
  py::dict out;
  out["config"] = json_to_python(model->cfg.resolved);
  out["step"] = state.step;
  out["params"] = to_numpy(std::move(state.params));
  out["adam_m"] = to_numpy(std::move(state.adam_m));
  out["adam_v"] = to_numpy(std::move(state.adam_v));
  out["train_loss_sum"] = state.train_loss_sum;
  out["train_loss_count"] = state.train_loss_count;
  out["data_generator"] = state.data_generator;
  out["model"] = py::cast(std::move(model));
  return out;
}

py::dict load_checkpoint_file(const std::string& path) {
  std::unique_ptr<Model> model;
  TrainState state;
  {
    py::gil_scoped_release release;
    // The stored config is re-resolved, so keys added since it was written take defaults.
    model = std::make_unique<Model>(make_run_config(checkpoint_config(path), {}));
    state = load_checkpoint(path, model->transformer);
  }
  return state_dict(std::move(model), std::move(state));
}

py::dict load_run(const std::string& run_dir, const std::string& checkpoint) {
  std::unique_ptr<Model> model;
  TrainState state;
  fs::path ckpt;
  {
    py::gil_scoped_release release;
    model = std::make_unique<Model>(load_run_config(run_dir, {}));
    ckpt = checkpoint_to_read(run_dir, checkpoint);
    state = load_run_checkpoint(ckpt, model->cfg, model->transformer);
  }
  py::dict out = state_dict(std::move(model), std::move(state));
  out["checkpoint"] = ckpt.string();
  return out;
}

std::vector<float> moments_or_zeros(const std::optional<CArray<float>>& values, size_t count,
                                    const char* name) {
  if (!values) return std::vector<float>(count, 0.0f);
  if (values->ndim() != 1 || size_t(values->shape(0)) != count)
    fail("{} must be a 1-d array of {} values, got shape {}", name, count, shape_string(*values));
  return std::vector<float>(values->data(), values->data() + count);
}

void save_checkpoint_file(const std::string& path, const Model& model, const CArray<float>& params,
                          const std::optional<CArray<float>>& adam_m,
                          const std::optional<CArray<float>>& adam_v, int64_t step,
                          double train_loss_sum, int64_t train_loss_count) {
  const size_t n = model.transformer.num_params();
  require_params(params, n);
  if (step < 0) fail("step must be >= 0, got {}", step);
  TrainState state;
  state.step = step;
  state.params.assign(params.data(), params.data() + n);
  state.adam_m = moments_or_zeros(adam_m, n, "adam_m");
  state.adam_v = moments_or_zeros(adam_v, n, "adam_v");
  state.train_loss_sum = train_loss_sum;
  state.train_loss_count = train_loss_count;
  py::gil_scoped_release release;
  save_checkpoint(path, model.transformer, model.cfg.resolved, state);
}

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return py::dtype::of<float>();
    case DType::F64:
      return py::dtype::of<double>();
    case DType::I64:
      return py::dtype::of<int64_t>();
    case DType::I32:
      return py::dtype::of<int32_t>();
    case DType::U8:
      return py::dtype::of<uint8_t>();
  }
  fail("internal: unknown dtype");
}

DType safetensors_dtype(const py::dtype& dtype, const std::string& name) {
  if (dtype.is(py::dtype::of<float>())) return DType::F32;
  if (dtype.is(py::dtype::of<double>())) return DType::F64;
  if (dtype.is(py::dtype::of<int64_t>())) return DType::I64;
  if (dtype.is(py::dtype::of<int32_t>())) return DType::I32;
  if (dtype.is(py::dtype::of<uint8_t>())) return DType::U8;
  fail("tensor '{}': dtype {} cannot be stored (float32, float64, int64, int32, uint8)", name,
       std::string(py::str(static_cast<const py::handle&>(dtype))));
}

// The tensor's bytes, moved into the capsule the array views (no copy).
py::array tensor_to_numpy(Tensor&& t) {
  std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
  auto* owned = new std::string(std::move(t.bytes));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::string*>(p); });
  return py::array(numpy_dtype(t.dtype), shape, owned->data(), owner);
}

py::dict load_safetensors_file(const std::string& path) {
  SafetensorsFile file;
  {
    py::gil_scoped_release release;
    file = load_safetensors(path);
  }
  py::dict tensors;
  for (Tensor& t : file.tensors) {
    const std::string name = t.name;
    tensors[py::str(name)] = tensor_to_numpy(std::move(t));
  }
  py::dict out;
  out["tensors"] = tensors;
  out["metadata"] = py::cast(file.metadata);
  return out;
}

void save_safetensors_file(const std::string& path, const py::dict& tensors,
                           const std::optional<std::map<std::string, std::string>>& metadata) {
  static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");
  SafetensorsFile file;
  if (metadata) file.metadata = *metadata;
  for (const auto& [key, value] : tensors) {
    Tensor t;
    t.name = key.cast<std::string>();
    // C order, as safetensors stores it: a copy only for a non-contiguous array.
    const py::array a = py::array::ensure(value, py::array::c_style);
    if (!a) fail("tensor '{}' is not an array", t.name);
    t.dtype = safetensors_dtype(a.dtype(), t.name);
    t.shape.assign(a.shape(), a.shape() + a.ndim());
    t.bytes.assign(static_cast<const char*>(a.data()), size_t(a.nbytes()));
    file.tensors.push_back(std::move(t));
  }
  py::gil_scoped_release release;
  save_safetensors(path, file);
}

}  // namespace

void bind_checkpoints(py::module_& m) {
  m.def("load_checkpoint", &load_checkpoint_file, py::arg("path"),
        "a checkpoint (format, version and data checksum verified): {'model', 'config', "
        "'step', 'params', 'adam_m', 'adam_v', 'train_loss_sum', 'train_loss_count', "
        "'data_generator'}; model is rebuilt from the config stored in the file");
  m.def("load_run", &load_run, py::arg("run_dir"), py::arg("checkpoint") = "",
        "a run's checkpoint (default: the latest) checked against its config.json, as the CLI "
        "commands on a run read it; the keys of load_checkpoint plus 'checkpoint' (the path)");
  m.def("save_checkpoint", &save_checkpoint_file, py::arg("path"), py::arg("model"),
        py::arg("params"), py::arg("adam_m") = py::none(), py::arg("adam_v") = py::none(),
        py::arg("step") = 0, py::arg("train_loss_sum") = 0.0, py::arg("train_loss_count") = 0,
        "writes a checkpoint (atomic) that `mesalab train --resume` and every command read; "
        "Adam moments default to zero");
  m.def("load_safetensors", &load_safetensors_file, py::arg("path"),
        "any safetensors file of F32, F64, I64, I32 or U8 tensors: {'tensors': {name: array}, "
        "'metadata': {str: str}}");
  m.def("save_safetensors", &save_safetensors_file, py::arg("path"), py::arg("tensors"),
        py::arg("metadata") = py::none(),
        "writes {name: array} (float32, float64, int64, int32, uint8) as a safetensors file "
        "(atomic), tensors in the dict's order, with optional string metadata");
}

}  // namespace mesalab::python
