// The Python module `mesalab`: numpy in and out, mesalab's errors as Python exceptions.
#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

#include "bindings.hpp"
#include "core/error.hpp"

namespace py = pybind11;

PYBIND11_MODULE(mesalab, m) {
  m.doc() =
      "mesalab: mesa-optimization in transformers on a CPU. Arrays are numpy; configs are dicts "
      "with the keys of the JSON configs (see config_schema()). Bad input raises ValueError, "
      "runtime failures (e.g. a non-finite gradient) RuntimeError, both with mesalab's message.";
  // Bad input (exit code 2 in the CLI) is a ValueError, a runtime failure (exit code 1) a
  // RuntimeError, both with mesalab's one-line message.
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const mesalab::Error& e) {
      PyErr_SetString(
          e.kind() == mesalab::ErrorKind::BadInput ? PyExc_ValueError : PyExc_RuntimeError,
          e.what());
    } catch (const nlohmann::json::exception& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  mesalab::python::bind_model(m);
  mesalab::python::bind_data(m);
  mesalab::python::bind_train(m);
  mesalab::python::bind_checkpoints(m);
  mesalab::python::bind_baselines(m);
  mesalab::python::bind_probes(m);
  mesalab::python::bind_revalg(m);
}
