// mesalab revalg RUN_DIR: the block structure of every attention head's M_QK = Wq_h Wk_h^T
// and M_PV = Wv_h P_h, and for a 1-layer LSA the RevAlg-1 closed form and GD with learned
// (eta, W0) next to the trained model (analysis/revalg.hpp). Writes RUN_DIR/revalg.json, the
// heat maps RUN_DIR/figures/revalg_weights.* and, with the comparison, revalg_curves.*.
// A model the closed form does not cover (softmax, several layers, LayerNorm, MLP) gets the
// structure only, with a note, unless --closed-form demands the comparison (then exit 2).
#include <fmt/format.h>

#include "analysis/revalg.hpp"
#include "analysis/revalg_d.hpp"
#include "analysis/sparsity.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "io/atomic_file.hpp"
#include "report/run_figures.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace mesalab::cli {

namespace {

struct RevAlgArgs {
  std::string run_dir;
  std::string checkpoint;
  bool json = false;
  bool require_closed_form = false;
};

constexpr const char* kSlotNames[kTokenSlots] = {"0", "s_t", "s_t", "s_t-1"};

// One 4 x 4 grid: block scalars, each block's share of the matrix energy, and each block's
// diagonal-energy fraction, side by side.
void print_grid(const char* title, const char* rows, const BlockGrid& g) {
  fmt::print("  {} ({} x column slot): block scalar tr(B)/D | energy share | diag fraction\n",
             title, rows);
  fmt::print("  {:>7}", "");
  for (const char* s : kSlotNames) fmt::print(" {:>10}", s);
  fmt::print(" |");
  for (int b = 0; b < kTokenSlots; ++b) fmt::print(" {:>5}", b);
  fmt::print(" |");
  for (int b = 0; b < kTokenSlots; ++b) fmt::print(" {:>5}", b);
  fmt::print("\n");
  for (int a = 0; a < kTokenSlots; ++a) {
    fmt::print("  {:>7}", kSlotNames[a]);
    for (int b = 0; b < kTokenSlots; ++b) fmt::print(" {:>+10.3e}", g.blocks[a][b].scalar);
    fmt::print(" |");
    for (int b = 0; b < kTokenSlots; ++b)
      fmt::print(" {:>5.3f}", g.total_energy > 0.0 ? g.blocks[a][b].energy / g.total_energy : 0.0);
    fmt::print(" |");
    for (int b = 0; b < kTokenSlots; ++b) fmt::print(" {:>5.3f}", g.blocks[a][b].diag_fraction);
    fmt::print("\n");
  }
  fmt::print(
      "  energy on block diagonals {:.4f}, in block-scaled identities {:.4f} (|M|_F^2 = "
      "{:.4g})\n",
      g.diagonal_energy_fraction, g.identity_energy_fraction, g.total_energy);
}

void print_report(const RevAlgReport& r, const std::filesystem::path& ckpt, int64_t step,
                  double clip) {
  fmt::print("{} (step {})\n", ckpt.string(), step);
  for (const LayerStructure& ls : r.structure) {
    for (size_t h = 0; h < ls.heads.size(); ++h) {
      fmt::print("\nlayer {} ({}), head {}\n", ls.layer, mixer_name(ls.kind), h);
      print_grid("M_QK = Wq_h Wk_h^T", "query slot", ls.heads[h].qk);
      print_grid("M_PV = Wv_h P_h", "value slot", ls.heads[h].pv);
    }
  }
  fmt::print("\n");
  if (!r.has_comparison) {
    fmt::print("{}\n", r.comparison_note);
    return;
  }
  const ClosedFormComparison& c = r.comparison;
  fmt::print(
      "RevAlg-1 closed form pred_t = sum_(i<=t) sum w[q][k][v] (x_q(t) . x_k(i)) x_v(i):\n"
      "  {:<28} {:>10} {:>10}\n",
      "term", "extracted", "lsq fit");
  for (int q = 0; q < 2; ++q)
    for (int k = 0; k < 2; ++k)
      for (int v = 0; v < 2; ++v)
        fmt::print("  {:<28} {:>+10.5f} {:>+10.5f}\n",
                   fmt::format("({} . {}) {}", q == 0 ? "s_t" : "s_{t-1}",
                               k == 0 ? "s_i" : "s_{i-1}", v == 0 ? "s_i" : "s_{i-1}"),
                   c.coefficients[q][k][v], c.fitted[q][k][v]);
  double trace = 0.0, norm2 = 0.0;
  for (int j = 0; j < c.gd_w0.dim; ++j) trace += c.gd_w0.w0[size_t(j) * (c.gd_w0.dim + 1)];
  for (double v : c.gd_w0.w0) norm2 += v * v;
  fmt::print("\nmean per-step test loss over t = 1..{}:\n", c.curves[0].second.size());
  const char* labels[] = {"trained LSA",
                          "RevAlg-1 (block scalars)",
                          "  the same without clip",
                          "RevAlg-1 (least-squares w)",
                          "GD-1 (eta only)",
                          "GD-1 with the model's clip",
                          "GD-1 + linear s_t^T W0",
                          "one GD step from learned W0",
                          "least squares",
                          "least squares (all pairs)",
                          "zero",
                          "copy"};
  for (size_t i = 0; i < c.curves.size(); ++i)
    fmt::print("  {:<28} {:.5f}\n", labels[i], curve_mean(c.curves[i].second));
  double step_norm2 = 0.0;
  for (double v : c.gd_step.w0) step_norm2 += v * v;
  fmt::print(
      "  (GD-1 eta {:.5f}, with clip {:.5f}; GD-1 + linear term: eta {:.5f}, tr(W0)/D {:+.5f}, "
      "|W0|_F {:.5f}; one step from W0: eta {:.5f}, |W0|_F {:.5f})\n",
      c.gd_eta, c.gd_eta_clipped, c.gd_w0.eta, trace / c.gd_w0.dim, std::sqrt(norm2), c.gd_step.eta,
      std::sqrt(step_norm2));
  fmt::print(
      "  Closed forms are scored with the model's clip at {} unless marked; every eta, W0 and\n"
      "  the least-squares w are fitted on held-out sequences, not on the test set.\n",
      clip);
}

int run_revalg(const RevAlgArgs& a) {
  const RunConfig cfg = load_run_config(a.run_dir, {});
  if (a.require_closed_form) {
    if (const std::string why = closed_form_ineligibility(cfg); !why.empty()) {
      fail("revalg --closed-form: {} is not a 1-layer LSA on constructed tokens: {}", a.run_dir,
           why);
    }
  }
  const Transformer model(cfg.model);
  const std::filesystem::path ckpt = checkpoint_to_read(a.run_dir, a.checkpoint);
  const TrainState state = load_run_checkpoint(ckpt, cfg, model);
  const RevAlgReport report = analyse_revalg(cfg, state.params);
  nlohmann::json j = revalg_report_json(report, cfg.model.data_dim);
  j["checkpoint"] = ckpt.string();
  j["step"] = state.step;
  const std::vector<double> params(state.params.begin(), state.params.end());
  // Sparsity as the paper reads its weight plots.
  nlohmann::json sparsity = nlohmann::json::array();
  for (const HeadSparsity& h : weight_sparsity(model, params.data(), kDefaultSparsityThreshold))
    sparsity.push_back({{"layer", h.layer}, {"head", h.head}, {"qk", h.qk}, {"pv", h.pv}});
  j["sparsity"] = {{"relative_threshold", kDefaultSparsityThreshold}, {"heads", sparsity}};
  // RevAlg-d: every linear-attention model on constructed tokens, any depth.
  const std::string revalg_d_note = revalg_d_ineligibility(cfg);
  RevAlgDComparison revalg_d;
  if (revalg_d_note.empty()) {
    revalg_d = compare_revalg_d(cfg, model, state.params);
    j["revalg_d"] = revalg_d_json(revalg_d);
  } else {
    j["revalg_d"] = nullptr;
    j["revalg_d_note"] = revalg_d_note;
  }
  write_file_atomic(std::filesystem::path(a.run_dir) / "revalg.json", j.dump(2) + "\n");
  std::vector<report::FigureFiles> figures = {write_run_figure(
      a.run_dir, "revalg_weights",
      report::weight_heatmap_figure(
          model, params.data(),
          fmt::format("{} (step {}): W_Q W_K^T and W_V W_O per head", a.run_dir, state.step)))};
  if (report.has_comparison)
    figures.push_back(write_run_figure(
        a.run_dir, "revalg_curves",
        report::per_step_figure(
            fmt::format("{} (step {}) and its extracted algorithm", a.run_dir, state.step),
            report.comparison.curves)));
  if (revalg_d_note.empty())
    figures.push_back(write_run_figure(
        a.run_dir, "revalg_d_curves",
        report::per_step_figure(
            fmt::format("{} (step {}) and RevAlg-d from its block scalars", a.run_dir, state.step),
            revalg_d.curves)));
  if (a.json) {
    fmt::print("{}\n", j.dump());
    return 0;
  }
  print_report(report, ckpt, state.step, cfg.model.clip_act);
  if (revalg_d_note.empty())
    fmt::print(
        "\nRevAlg-d (16 + 16 block scalars per head and layer, key size E): mean per-step test "
        "loss {:.5f} vs the trained model {:.5f}; the scalars carry {:.3f} of the energy of "
        "W_Q W_K^T and {:.3f} of W_V W_O\n",
        curve_mean(revalg_d.curves[1].second), curve_mean(revalg_d.curves[0].second),
        revalg_d.qk_energy_share, revalg_d.pv_energy_share);
  else
    fmt::print("\nRevAlg-d: not applicable ({})\n", revalg_d_note);
  fmt::print("\n");
  for (const report::FigureFiles& f : figures) fmt::print("{}\n", figure_line(f));
  return 0;
}

}  // namespace

Command add_revalg_command(CLI::App& root) {
  auto* app = root.add_subcommand(
      "revalg",
      "Reverse-engineer a run's attention weights: block structure of Wq Wk^T and Wv Wo, and "
      "for a 1-layer LSA the RevAlg-1 closed form and GD with learned W0 next to the model, and "
      "for linear-attention models of any depth RevAlg-d");
  auto args = std::make_shared<RevAlgArgs>();
  app->add_option("run_dir", args->run_dir, "run directory (runs/<name>)")->required();
  app->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the latest)");
  app->add_flag("--json", args->json, "print the result as JSON");
  app->add_flag("--closed-form", args->require_closed_form,
                "fail (exit 2) unless the 1-layer closed-form comparison applies");
  return {app, [args] { return run_revalg(*args); }};
}

}  // namespace mesalab::cli
