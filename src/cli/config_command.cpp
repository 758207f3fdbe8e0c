#include <fmt/format.h>

#include "cli/commands.hpp"

namespace mesalab::cli {

Command add_config_command(CLI::App& root) {
  auto* app = root.add_subcommand("config", "Print the resolved config, or list every key");
  auto options = std::make_shared<ConfigOptions>();
  auto list = std::make_shared<bool>(false);
  options->add_to(*app);
  app->add_flag("--list", *list, "list every config key with its type, default and range");
  return {app, [options, list] {
            if (*list) {
              fmt::print("{}", run_config_schema().describe());
            } else {
              fmt::print("{}\n", options->resolve().resolved.dump(2));
            }
            return 0;
          }};
}

}  // namespace mesalab::cli
