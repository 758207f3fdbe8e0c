#include "report/sensitivity_figures.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"

namespace mesalab::report {

namespace {

constexpr const char* kSensitivityLabel = "sensitivity mean ||d x_1[k] / d u_j||";

void check_records(const std::string& title, const std::vector<SensitivityRecord>& records) {
  if (records.empty()) fail("figure '{}': no sensitivity records", title);
  for (const SensitivityRecord& r : records)
    if (r.table.targets != records.front().table.targets)
      fail("figure '{}': the record of step {} has other target tokens than that of step {}", title,
           r.step, records.front().step);
}

std::string target_panel_title(int k) { return fmt::format("target token k = {}", k); }

// Short sequences repeat a target (T = 3: k = 1, 1, 2); each gets one panel.
bool repeated_target(const std::vector<int>& targets, size_t i) {
  return std::find(targets.begin(), targets.begin() + long(i), targets[i]) !=
         targets.begin() + long(i);
}

}  // namespace

Figure sensitivity_lag_figure(const std::string& title,
                              const std::vector<SensitivityRecord>& records, size_t max_series) {
  check_records(title, records);
  std::vector<size_t> shown;
  if (records.size() <= max_series || max_series < 2) {
    for (size_t r = 0; r < records.size(); ++r) shown.push_back(r);
  } else {
    for (size_t s = 0; s < max_series; ++s) {
      const size_t r = (s * (records.size() - 1) + (max_series - 1) / 2) / (max_series - 1);
      if (shown.empty() || shown.back() != r) shown.push_back(r);
    }
  }
  Figure figure{title, {}};
  const std::vector<int>& targets = records.front().table.targets;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (repeated_target(targets, i)) continue;
    Panel panel{target_panel_title(targets[i]), "lag k - j (input position j)", kSensitivityLabel,
                false, true};
    for (size_t r : shown) {
      Series s{fmt::format("step {}", records[r].step)};
      for (int lag = 0; lag <= targets[i]; ++lag) {
        s.x.push_back(lag);
        s.y.push_back(records[r].table.at_lag(i, lag));
      }
      panel.series.push_back(std::move(s));
    }
    figure.panels.push_back(std::move(panel));
  }
  return figure;
}

Figure sensitivity_training_figure(const std::string& title,
                                   const std::vector<SensitivityRecord>& records, int max_lag) {
  check_records(title, records);
  Figure figure{title, {}};
  const std::vector<int>& targets = records.front().table.targets;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (repeated_target(targets, i)) continue;
    const int k = targets[i];
    Panel panel{target_panel_title(k), "training step", kSensitivityLabel, false, true};
    for (int lag = 0; lag <= std::min(max_lag, k); ++lag) {
      Series s{fmt::format("lag {} (j = k - {})", lag, lag)};
      for (const SensitivityRecord& r : records) {
        s.x.push_back(double(r.step));
        s.y.push_back(r.table.at_lag(i, lag));
      }
      panel.series.push_back(std::move(s));
    }
    if (k > max_lag) {
      Series old{fmt::format("lags > {} (mean)", max_lag), {}, {}, true};
      for (const SensitivityRecord& r : records) {
        double sum = 0.0;
        for (int j = 0; j < k - max_lag; ++j) sum += r.table.values[i][size_t(j)];
        old.x.push_back(double(r.step));
        old.y.push_back(sum / (k - max_lag));
      }
      panel.series.push_back(std::move(old));
    }
    figure.panels.push_back(std::move(panel));
  }
  return figure;
}

}  // namespace mesalab::report
