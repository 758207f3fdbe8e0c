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

nlohmann::json PhaseTimes::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (int p = 0; p < kNumPhases; ++p) j[kPhaseNames[p]] = seconds_[size_t(p)];
  return j;
}

std::string PhaseTimes::summary(double wall_seconds) const {
  std::string line = fmt::format("time {:.1f} s:", wall_seconds);
  const double share = wall_seconds > 0.0 ? 100.0 / wall_seconds : 0.0;
  for (int p = 0; p < kNumPhases; ++p)
    line += fmt::format(" {} {:.1f} s ({:.0f}%),", kPhaseNames[p], seconds_[size_t(p)],
                        seconds_[size_t(p)] * share);
  line += fmt::format(" other {:.1f} s", std::max(0.0, wall_seconds - total()));
  return line;
}

}  // namespace mesalab
