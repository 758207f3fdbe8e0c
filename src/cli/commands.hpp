#pragma once
// Each subcommand registers its options on the CLI11 app and returns the action to run.
// Commands are thin: parse, call the library, print (results on stdout, progress on stderr).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "train/run_config.hpp"

namespace mesalab::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// --config FILE and repeatable --set key=value, shared by the commands that take a config.
struct ConfigOptions {
  std::string file;
  std::vector<std::string> sets;
  void add_to(CLI::App& app);
  RunConfig resolve() const;
};

Command add_train_command(CLI::App& root);
Command add_eval_command(CLI::App& root);
Command add_baselines_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_config_command(CLI::App& root);
Command add_inspect_command(CLI::App& root);
Command add_probe_command(CLI::App& root);
Command add_revalg_command(CLI::App& root);

}  // namespace mesalab::cli
