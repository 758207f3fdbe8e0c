#include "train/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

namespace mesalab {

ProgressLine::ProgressLine(std::string label, int64_t first_step, int64_t total_steps, bool enabled,
                           std::FILE* out)
    : label_(std::move(label)),
      first_step_(first_step),
      total_steps_(total_steps),
      enabled_(enabled),
      is_tty_(isatty(fileno(out)) != 0),
      out_(out),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

static std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = long(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
  return fmt::format("{}m{:02}s", s / 60, s % 60);
}

void ProgressLine::draw(int64_t step, double train_loss, double test_loss, bool newline) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? double(step - first_step_) / elapsed : 0.0;
  const double eta = rate > 0 ? double(total_steps_ - step) / rate : NAN;
  std::string line = fmt::format("{} step {}/{}", label_, step, total_steps_);
  if (std::isfinite(train_loss)) line += fmt::format("  loss {:.5f}", train_loss);
  if (std::isfinite(test_loss)) line += fmt::format("  test {:.5f}", test_loss);
  line += fmt::format("  {:.1f} steps/s  ETA {}", rate, format_duration(eta));
  fmt::print(out_, "{}{}{}", is_tty_ ? "\r\033[K" : "", line, newline || !is_tty_ ? "\n" : "");
  std::fflush(out_);
  last_draw_ = now;
  drawn_ = !newline && is_tty_;
}

void ProgressLine::tick(int64_t step, double train_loss, double test_loss) {
  if (!enabled_ || !is_tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() < 0.25) return;
  draw(step, train_loss, test_loss, false);
}

void ProgressLine::report(int64_t step, double train_loss, double test_loss) {
  if (enabled_) draw(step, train_loss, test_loss, false);
}

void ProgressLine::finish() {
  if (enabled_ && drawn_) fmt::print(out_, "\n");
  drawn_ = false;
}

}  // namespace mesalab
