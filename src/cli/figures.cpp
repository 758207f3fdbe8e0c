// Where the commands' figures go and how they are rendered, decided in one place.
#include <fmt/format.h>

#include <cstdlib>

#include "cli/commands.hpp"

namespace mesalab::cli {

report::RenderOptions render_options_from_env() {
  report::RenderOptions options;
  if (const char* program = std::getenv("MESALAB_GNUPLOT")) {
    options.gnuplot = program;
    options.render = !options.gnuplot.empty();
  }
  return options;
}

report::FigureFiles write_run_figure(const std::filesystem::path& run_dir, const std::string& stem,
                                     const report::Figure& figure) {
  return report::write_figure(figure, run_dir / "figures", stem, render_options_from_env());
}

std::string figure_line(const report::FigureFiles& files) {
  if (files.rendered)
    return fmt::format("figure: {} (png, csv and gnuplot script alongside)", files.svg.string());
  return fmt::format("figure (not rendered): {} and {}", files.csv.string(),
                     files.script.filename().string());
}

}  // namespace mesalab::cli
