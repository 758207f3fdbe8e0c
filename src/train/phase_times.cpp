#include "train/phase_times.hpp"

#include <fmt/format.h>

namespace mesalab {

static constexpr const char* kPhaseNames[kNumPhases] = {"data", "model", "optimizer", "evaluation",
                                                        "checkpoint"};

double PhaseTimes::total() const {
  double sum = 0.0;
  for (double s : seconds_) sum += s;
  return sum;
}

double PhaseTimes::forward_share() const {
  const double sum = forward_thread_s_ + backward_thread_s_;
  return sum > 0.0 ? forward_thread_s_ / sum : 0.0;
}

nlohmann::json PhaseTimes::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (int p = 0; p < kNumPhases; ++p) j[kPhaseNames[p]] = seconds_[size_t(p)];
  j["model_forward_share"] = forward_share();
  return j;
}

std::string PhaseTimes::summary(double wall_seconds) const {
  std::string line = fmt::format("time {:.1f} s:", wall_seconds);
  const double share = wall_seconds > 0.0 ? 100.0 / wall_seconds : 0.0;
  for (int p = 0; p < kNumPhases; ++p) {
    line += fmt::format(" {} {:.1f} s ({:.0f}%", kPhaseNames[p], seconds_[size_t(p)],
                        seconds_[size_t(p)] * share);
    if (Phase(p) == Phase::Model)
      line += fmt::format("; forward {:.0f}%, backward {:.0f}% of its thread time",
                          100.0 * forward_share(), 100.0 * (1.0 - forward_share()));
    line += "),";
  }
  line += fmt::format(" other {:.1f} s", std::max(0.0, wall_seconds - total()));
  return line;
}

}  // namespace mesalab
