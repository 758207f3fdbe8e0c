#include <fmt/format.h>

#include "analysis/baselines.hpp"
#include "cli/commands.hpp"

namespace mesalab::cli {

Command add_baselines_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "baselines", "Zero, copy, least-squares and tuned GD-1 predictors on the test set");
  auto options = std::make_shared<ConfigOptions>();
  auto json = std::make_shared<bool>(false);
  options->add_to(*app);
  app->add_flag("--json", *json, "print the result as JSON");
  return {app, [options, json] {
            const RunConfig cfg = options->resolve();
            const BaselineReport r =
                run_baselines(cfg.data, cfg.train.seed, cfg.train.test_batches,
                              cfg.train.test_batch_size, 1e-3, cfg.delay_baseline_width());
            if (*json) {
              fmt::print("{}\n", baseline_report_json(r).dump());
              return 0;
            }
            fmt::print("mean per-step test loss over t = 1..{} ({} x {} test sequences, seed {})\n",
                       cfg.data.seq_len, cfg.train.test_batches, cfg.train.test_batch_size,
                       cfg.train.seed);
            for (const auto& [name, curve] : r.curves)
              fmt::print("  {:<24} {:.5f}\n", name, curve_mean(curve));
            fmt::print("  GD-1 eta tuned on held-out sequences: {:.5f}\n", r.gd_eta);
            return 0;
          }};
}

}  // namespace mesalab::cli
