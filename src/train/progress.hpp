#pragma once
// The progress line of long runs, on stderr: step/total, loss, steps/s, ETA. On a terminal
// it is redrawn in place (at most 4 times a second); otherwise one line per call to
// report().
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace mesalab {

class ProgressLine {
 public:
  ProgressLine(std::string label, int64_t first_step, int64_t total_steps, bool enabled = true,
               std::FILE* out = stderr);
  // Called every step; draws only when enough time has passed (terminal only).
  void tick(int64_t step, double train_loss, double test_loss);
  // Forces a line (e.g. at each evaluation).
  void report(int64_t step, double train_loss, double test_loss);
  void finish();

 private:
  void draw(int64_t step, double train_loss, double test_loss, bool newline);
  std::string label_;
  int64_t first_step_, total_steps_;
  bool enabled_, is_tty_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

}  // namespace mesalab
