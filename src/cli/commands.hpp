#pragma once
// Each subcommand registers its options on the CLI11 app and returns the action to run.
// Commands are thin: parse, call the library, print (results on stdout, progress on stderr).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "report/figure.hpp"
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
Command add_interpolate_command(CLI::App& root);
Command add_plot_command(CLI::App& root);
Command add_reproduce_command(CLI::App& root);
Command add_icl_command(CLI::App& root);
Command add_prompt_tune_command(CLI::App& root);
Command add_tokens_command(CLI::App& root);
Command add_sensitivity_command(CLI::App& root);
Command add_linearize_command(CLI::App& root);

// The commands' figures go to RUN_DIR/figures/<stem>.{csv,gp,svg,png}. The environment
// variable MESALAB_GNUPLOT, read only here, names the gnuplot program (default "gnuplot"; an
// empty value writes the CSV and script without rendering them).
report::RenderOptions render_options_from_env();
report::FigureFiles write_run_figure(const std::filesystem::path& run_dir, const std::string& stem,
                                     const report::Figure& figure);
// One line for the text output: "figure: <svg> (png, csv and gnuplot script alongside)", or
// the CSV and script when the figure was not rendered.
std::string figure_line(const report::FigureFiles& files);

}  // namespace mesalab::cli
