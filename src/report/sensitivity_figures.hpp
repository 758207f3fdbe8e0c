#pragma once
// The figures of the first block's sensitivity (analysis/sensitivity.hpp), shared by
// `mesalab sensitivity` and `mesalab reproduce`; builders only, write_figure does the I/O.
#include <string>
#include <vector>

#include "analysis/sensitivity.hpp"
#include "report/figure.hpp"

namespace mesalab::report {

// One panel per target token k: the sensitivity S_k(k - lag) against the lag 0..k (log y),
// one series per record ("step N"). With more than `max_series` records, an evenly spaced
// selection including the first and the last is drawn. Records must share their targets;
// Error (bad input) if there are none or they do not.
Figure sensitivity_lag_figure(const std::string& title,
                              const std::vector<SensitivityRecord>& records, size_t max_series = 6);

// The official figure: one panel per target token k, the sensitivity against the training
// step (log y), one series per lag 0..max_lag and one for the mean over the older positions
// (lags > max_lag, if k has any). Same errors as sensitivity_lag_figure.
Figure sensitivity_training_figure(const std::string& title,
                                   const std::vector<SensitivityRecord>& records, int max_lag = 5);

}  // namespace mesalab::report
