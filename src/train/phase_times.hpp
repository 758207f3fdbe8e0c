#pragma once
// Where a training run's wall time goes: data (drawing the batch), model (forward and
// backward), optimizer, evaluation and checkpoint. Written to metrics.jsonl with every
// evaluation and summed up in one line at the end of a run.
#include <array>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace mesalab {

enum class Phase { Data, Model, Optimizer, Evaluation, Checkpoint };
inline constexpr int kNumPhases = 5;

class PhaseTimes {
 public:
  // Runs fn() and adds its wall time to `phase`; returns what fn returns.
  template <class Fn>
  decltype(auto) time(Phase phase, Fn&& fn) {
    const Stopwatch stopwatch(seconds_[size_t(phase)]);
    return fn();
  }
  double seconds(Phase phase) const { return seconds_[size_t(phase)]; }
  // How the model phase splits into forward and backward, from the thread-seconds the
  // batch runner measured (BatchRunner::thread_seconds).
  void set_model_split(double forward_thread_s, double backward_thread_s) {
    forward_thread_s_ = forward_thread_s;
    backward_thread_s_ = backward_thread_s;
  }
  // forward / (forward + backward) thread time, or 0 before any step.
  double forward_share() const;
  double total() const;
  // {"data": s, "model": s, ..., "model_forward_share": f}: seconds since this process
  // started the run.
  nlohmann::json to_json() const;
  // "time 12.3 s: data 0.4 s (3%), model 11.2 s (91%), ..., other 0.1 s".
  std::string summary(double wall_seconds) const;

 private:
  struct Stopwatch {
    explicit Stopwatch(double& sink) : sink_(sink), start_(std::chrono::steady_clock::now()) {}
    ~Stopwatch() {
      sink_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }
    double& sink_;
    std::chrono::steady_clock::time_point start_;
  };
  std::array<double, kNumPhases> seconds_{};
  double forward_thread_s_ = 0.0, backward_thread_s_ = 0.0;
};

}  // namespace mesalab
