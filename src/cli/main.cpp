// mesalab: one binary, one subcommand per task. Errors are one line on stderr and a
// non-zero exit (2 = bad input, 1 = runtime failure).
#include <fmt/format.h>

#include <exception>

#include "cli/commands.hpp"
#include "core/error.hpp"

namespace mesalab::cli {

void ConfigOptions::add_to(CLI::App& app) {
  app.add_option("--config", file, "JSON config file (nested keys, see `mesalab config --list`)");
  app.add_option("--set", sets, "override one config key: --set model.layers=3 (repeatable)");
}

RunConfig ConfigOptions::resolve() const {
  const nlohmann::json from_file = file.empty() ? nlohmann::json() : load_config_file(file);
  return make_run_config(from_file, sets);
}

}  // namespace mesalab::cli

int main(int argc, char** argv) {
  using namespace mesalab::cli;
  CLI::App app{"mesalab: mesa-optimization in transformers, reproduced on a CPU"};
  app.require_subcommand(1);
  const std::vector<Command> commands = {
      add_train_command(app),       add_eval_command(app),      add_baselines_command(app),
      add_bench_command(app),       add_config_command(app),    add_inspect_command(app),
      add_probe_command(app),       add_revalg_command(app),    add_interpolate_command(app),
      add_plot_command(app),        add_reproduce_command(app), add_icl_command(app),
      add_prompt_tune_command(app), add_tokens_command(app),    add_sensitivity_command(app),
      add_linearize_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const mesalab::Error& e) {
    fmt::print(stderr, "\nmesalab: error: {}\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "\nmesalab: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
