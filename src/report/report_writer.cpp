#include "report/report_writer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "io/atomic_file.hpp"

namespace mesalab::report {

namespace fs = std::filesystem;

namespace {

std::string duration(double s) {
  if (s < 60) return fmt::format("{:.1f} s", s);
  const long total = std::lround(s);
  if (total < 3600) return fmt::format("{}m {:02}s", total / 60, total % 60);
  return fmt::format("{}h {:02}m", total / 3600, (total % 3600) / 60);
}

// "1, 11, 111" or, when sweep presets train from fewer seeds, "1, 11, 111 (sweeps: 1)".
std::string seed_list(const std::vector<uint64_t>& seeds, const std::vector<uint64_t>& sweep) {
  if (seeds.empty() && sweep.empty()) return "none (no training)";
  std::string s = fmt::format("{}", fmt::join(seeds, ", "));
  if (!sweep.empty() && sweep != seeds) s += fmt::format(" (sweeps: {})", fmt::join(sweep, ", "));
  return s;
}

std::string seeds_text(const ExperimentReport& e) { return seed_list(e.seeds, e.sweep_seeds); }

std::string scale_line(const ReportData& d) {
  return fmt::format("{}; training seeds {}; test seeds {} with {} sequences each",
                     d.quick
                         ? "**quick smoke test** (short runs, numbers are not the paper's scale)"
                         : "full scale (the paper's steps and schedule)",
                     d.seeds.empty() ? "-" : seed_list(d.seeds, d.sweep_seeds),
                     fmt::format("{}", fmt::join(d.test_seeds, ", ")), d.test_batch);
}

std::string times_line(const ReportData& d) {
  return fmt::format(
      "Wall time of this invocation {}; training time of its runs {} (summed over runs, which "
      "train side by side; a reused run counts the last segment of its training)",
      duration(d.wall_s), duration(d.train_s));
}

std::string path_from(const fs::path& dir, const fs::path& p) {
  return p.lexically_relative(dir).generic_string();
}

// ---- markdown ----------------------------------------------------------------------------

std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string md_table(const Table& t) {
  std::string s = t.caption.empty() ? "" : fmt::format("*{}*\n\n", md_cell(t.caption));
  s += "|";
  for (const auto& h : t.header) s += " " + md_cell(h) + " |";
  s += "\n|";
  for (size_t i = 0; i < t.header.size(); ++i) s += "---|";
  s += "\n";
  for (const auto& row : t.rows) {
    s += "|";
    for (const auto& c : row) s += " " + md_cell(c) + " |";
    s += "\n";
  }
  return s + "\n";
}

std::string md_experiment(const ExperimentReport& e, const fs::path& dir) {
  const Outcome& o = e.outcome;
  std::string s = fmt::format("## {}\n\n**Claim** ({}): {}\n\n**Criterion:** {}\n\n", e.name,
                              e.source, e.claim, e.criterion);
  s += fmt::format("**{}** — {}\n\n", verdict_name(o.verdict), o.measured);
  for (const Table& t : o.tables) s += md_table(t);
  for (const FigureRef& f : o.figures)
    s += fmt::format("![{}]({})\n\n*{}* ([PNG]({}))\n\n", f.caption, path_from(dir, f.svg),
                     f.caption, path_from(dir, f.png));
  for (const std::string& n : o.notes) s += "- " + n + "\n";
  if (!o.notes.empty()) s += "\n";
  if (!e.commands.empty())
    s += fmt::format("Commands:\n\n```sh\n{}\n```\n\n", fmt::join(e.commands, "\n"));
  s += fmt::format("Seeds: {}. Wall time: training {}, analysis {}.\n\n", seeds_text(e),
                   duration(e.train_s), duration(e.analysis_s));
  return s;
}

// ---- html --------------------------------------------------------------------------------

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

// The <svg> element of a gnuplot SVG file with its ids prefixed, so several figures can live
// in one page without their ids (and the references to them) colliding.
std::string inline_svg(const fs::path& path, const std::string& prefix) {
  if (!fs::exists(path))
    return fmt::format(
        "<p class=\"missing\">figure not rendered: {} is missing (render it with "
        "gnuplot from its .gp file)</p>",
        escape(path.filename().string()));
  std::string svg = read_file(path);
  const size_t start = svg.find("<svg");
  if (start == std::string::npos) return "<p class=\"missing\">not an SVG file</p>";
  svg = svg.substr(start);
  svg = replace_all(svg, "id=\"", "id=\"" + prefix);
  svg = replace_all(svg, "href=\"#", "href=\"#" + prefix);
  svg = replace_all(svg, "url(#", "url(#" + prefix);
  return svg;
}

std::string html_table(const Table& t) {
  std::string s = "<table>";
  if (!t.caption.empty()) s += "<caption>" + escape(t.caption) + "</caption>";
  s += "<thead><tr>";
  for (const auto& h : t.header) s += "<th>" + escape(h) + "</th>";
  s += "</tr></thead><tbody>";
  for (const auto& row : t.rows) {
    s += "<tr>";
    for (const auto& c : row) s += "<td>" + escape(c) + "</td>";
    s += "</tr>";
  }
  return s + "</tbody></table>\n";
}

std::string verdict_class(Verdict v) {
  return v == Verdict::Pass ? "pass" : v == Verdict::Differs ? "differs" : "failed";
}

constexpr const char* kStyle = R"css(
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1150px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; }
.verdict { display: inline-block; font-weight: bold; padding: .1em .6em; border-radius: .3em; color: #fff; }
.pass { background: #2e7d32; } .differs { background: #ef6c00; } .failed { background: #c62828; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-style: italic; font-size: .92em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }
.missing { color: #c62828; }
)css";

}  // namespace

std::string report_markdown(const ReportData& d, const fs::path& dir) {
  std::string s = fmt::format("# {}\n\n", d.title);
  s += fmt::format("Made by `{}` on {}: {}. {}.\n\n", d.command_line, d.date, scale_line(d),
                   times_line(d));
  s += "## Summary\n\n| experiment | claim | verdict | measured |\n|---|---|---|---|\n";
  for (const ExperimentReport& e : d.experiments)
    s += fmt::format("| [{}](#{}) | {} | **{}** | {} |\n", e.name, e.name, md_cell(e.claim),
                     verdict_name(e.outcome.verdict), md_cell(e.outcome.measured));
  s += "\nPASS: the stated criterion holds. DIFFERS: it does not; the section says what was "
       "checked. FAILED: the experiment could not be measured (the error is shown).\n\n";
  for (const ExperimentReport& e : d.experiments) s += md_experiment(e, dir);
  return s;
}

std::string report_html(const ReportData& d) {
  std::string s = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{}</title><style>{}</style></head><body>\n<h1>{}</h1>\n",
      escape(d.title), kStyle, escape(d.title));
  s += fmt::format(
      "<p>Made by <code>{}</code> on {}: {}. {}.</p>\n", escape(d.command_line), escape(d.date),
      replace_all(replace_all(escape(scale_line(d)), "**", ""), "*", ""), times_line(d));
  s += "<h2>Summary</h2>\n<table><thead><tr><th>experiment</th><th>claim</th><th>verdict</th>"
       "<th>measured</th></tr></thead><tbody>";
  for (const ExperimentReport& e : d.experiments)
    s += fmt::format(
        "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td><span class=\"verdict {}\">{}</span>"
        "</td><td>{}</td></tr>",
        escape(e.name), escape(e.name), escape(e.claim), verdict_class(e.outcome.verdict),
        verdict_name(e.outcome.verdict), escape(e.outcome.measured));
  s += "</tbody></table>\n";
  int figure_index = 0;
  for (const ExperimentReport& e : d.experiments) {
    const Outcome& o = e.outcome;
    s += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", escape(e.name), escape(e.name));
    s += fmt::format("<p><b>Claim</b> ({}): {}</p>\n<p><b>Criterion:</b> {}</p>\n",
                     escape(e.source), escape(e.claim), escape(e.criterion));
    s += fmt::format("<p><span class=\"verdict {}\">{}</span> {}</p>\n", verdict_class(o.verdict),
                     verdict_name(o.verdict), escape(o.measured));
    for (const Table& t : o.tables) s += html_table(t);
    for (const FigureRef& f : o.figures)
      s += fmt::format("<figure>{}<figcaption>{}</figcaption></figure>\n",
                       inline_svg(f.svg, fmt::format("f{}_", figure_index++)), escape(f.caption));
    if (!o.notes.empty()) {
      s += "<ul>";
      for (const std::string& n : o.notes) s += "<li>" + escape(n) + "</li>";
      s += "</ul>\n";
    }
    if (!e.commands.empty())
      s += fmt::format("<p>Commands:</p><pre>{}</pre>\n",
                       escape(fmt::format("{}", fmt::join(e.commands, "\n"))));
    s += fmt::format("<p>Seeds: {}. Wall time: training {}, analysis {}.</p>\n</section>\n",
                     escape(seeds_text(e)), duration(e.train_s), duration(e.analysis_s));
  }
  return s + "</body></html>\n";
}

nlohmann::json outcome_json(const ExperimentReport& e) {
  const Outcome& o = e.outcome;
  nlohmann::json tables = nlohmann::json::array(), figures = nlohmann::json::array();
  for (const Table& t : o.tables)
    tables.push_back({{"caption", t.caption}, {"header", t.header}, {"rows", t.rows}});
  for (const FigureRef& f : o.figures)
    figures.push_back({{"caption", f.caption}, {"svg", f.svg.string()}, {"png", f.png.string()}});
  return {{"name", e.name},
          {"claim", e.claim},
          {"source", e.source},
          {"criterion", e.criterion},
          {"verdict", verdict_name(o.verdict)},
          {"measured", o.measured},
          {"tables", tables},
          {"figures", figures},
          {"notes", o.notes},
          {"commands", e.commands},
          {"seeds", e.seeds},
          {"sweep_seeds", e.sweep_seeds},
          {"train_s", e.train_s},
          {"analysis_s", e.analysis_s}};
}

}  // namespace mesalab::report
