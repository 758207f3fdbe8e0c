// Training from Python: the CLI's `mesalab train` with a callback per evaluation. The GIL is
// released while training and taken back only to call the callback and to check for Ctrl-C,
// which stops the run cleanly: the step in progress finishes, its checkpoint is written, and
// the KeyboardInterrupt is raised in the caller (resume=True continues bit-identically).
#include <pybind11/functional.h>

#include <exception>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "convert.hpp"
#include "train/trainer.hpp"

namespace mesalab::python {

namespace {

// What the training thread hands back to Python: the first exception raised by the callback
// or by a signal handler (KeyboardInterrupt), which stops the run after its checkpoint.
struct PendingError {
  std::exception_ptr error;
  // Runs fn with the GIL held; a Python exception it raises is kept, not propagated.
  template <class Fn>
  void run_in_python(Fn&& fn) {
    py::gil_scoped_acquire gil;
    if (error) return;
    try {
      fn();
    } catch (py::error_already_set&) {
      error = std::current_exception();
    }
  }
};

py::dict train_run(py::object config, std::optional<std::string> run_dir, py::object callback,
                   bool resume, bool force, bool continue_existing, bool progress,
                   bool detect_anomaly, bool allow_config_change) {
  if (resume && (force || continue_existing))
    fail("train: resume cannot be combined with force or continue_existing");
  if (force && continue_existing) fail("train: force cannot be combined with continue_existing");
  if (!callback.is_none() && !PyCallable_Check(callback.ptr()))
    throw py::type_error("callback must be callable(step, params, test_loss)");
  RunConfig cfg;
  std::filesystem::path dir;
  if (resume && config.is_none()) {
    if (!run_dir) fail("train: resume needs run_dir");
    dir = *run_dir;
    cfg = load_run_config(dir, {});
  } else {
    cfg = run_config_from(config);
    dir = run_dir ? std::filesystem::path(*run_dir)
                  : std::filesystem::path(cfg.train.runs_dir) / cfg.name;
  }
  TrainOptions options;
  options.resume = resume;
  options.force = force;
  options.continue_existing = continue_existing;
  options.progress = progress;
  options.detect_anomaly = detect_anomaly;
  options.allow_config_change = allow_config_change;

  PendingError pending;
  if (!callback.is_none())
    options.on_evaluation = [&](int64_t step, const std::vector<float>& params, double loss) {
      pending.run_in_python([&] {
        // A copy: the trainer's buffer changes with the next step.
        callback(step, to_numpy(std::vector<float>(params)), loss);
      });
    };
  // Every step: Python signal handlers run only when the interpreter gets control, which
  // it does not while the GIL is released.
  options.stop_requested = [&] {
    pending.run_in_python([] {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    });
    return bool(pending.error);
  };

  TrainResult result;
  {
    py::gil_scoped_release release;
    result = train(cfg, dir, options);
  }
  if (pending.error) std::rethrow_exception(pending.error);
  py::dict out;
  out["run_dir"] = result.run_dir.string();
  out["steps"] = result.steps;
  out["test_loss"] = result.test_loss;
  out["test_curve"] = to_numpy(std::move(result.test_curve));
  return out;
}

}  // namespace

void bind_train(py::module_& m) {
  m.def("train", &train_run, py::arg("config") = py::none(), py::arg("run_dir") = py::none(),
        py::arg("callback") = py::none(), py::arg("resume") = false, py::arg("force") = false,
        py::arg("continue_existing") = false, py::arg("progress") = false,
        py::arg("detect_anomaly") = false, py::arg("allow_config_change") = false,
        "train as `mesalab train` into run_dir (default <train.runs_dir>/<name>): config.json, "
        "metrics.jsonl, ckpt/. callback(step, params, test_loss) is called after every "
        "evaluation with a copy of the parameters the test loss was measured on; an exception "
        "it raises, or Ctrl-C, stops the run after the current step's checkpoint and is "
        "re-raised. resume=True continues run_dir bit-identically (config: the run's own, "
        "unless given). Returns {'run_dir', 'steps', 'test_loss', 'test_curve'}.");
}

}  // namespace mesalab::python
