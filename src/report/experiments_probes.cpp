// Linear-probe experiments of `mesalab reproduce`: the 2-layer model (probes) and the deep
// LSA and softmax models (probes_depth), read the same way.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "analysis/probes.hpp"
#include "report/experiment_common.hpp"
#include "report/run_figures.hpp"
#include "train/evaluation.hpp"

namespace mesalab::report {

namespace {

// ---- linear probes ---------------------------------------------------------------------

// The element-wise mean of probe results of one target (losses and R^2).
ProbeResult average_probes(const std::vector<ProbeResult>& results) {
  ProbeResult mean = results.front();
  for (size_t i = 0; i < mean.loss.size(); ++i) {
    double loss = 0.0, r2 = 0.0;
    for (const ProbeResult& r : results) {
      loss += r.loss[i];
      r2 += r.r2[i];
    }
    mean.loss[i] = loss / double(results.size());
    mean.r2[i] = r2 / double(results.size());
  }
  return mean;
}

// Mean probe loss of `layer` over the time steps t > D (index t >= D), where the
// preconditioned input is defined by more than the ridge.
double late_mean(const ProbeResult& r, int layer, int dim) {
  double sum = 0.0;
  for (int t = dim; t < r.seq_len; ++t) sum += r.loss_at(t, layer);
  return sum / double(std::max(1, r.seq_len - dim));
}

// The preconditioned-input probe variants reported next to the criterion's: the official
// outlier filter at z = 3 and 2 (its value is not in the official code), and a held-out split.
struct InverseVariant {
  std::string name;
  double outlier_z;
  bool held_out;
};
const std::vector<InverseVariant> kInverseVariants = {
    {"inverse, z < 3", 3.0, false}, {"inverse, z < 2", 2.0, false}, {"inverse, held-out", 0, true}};

// Every probe of one preset's runs, averaged over its training seeds and the test seeds.
struct ProbeSummary {
  int dim = 0, layers = 0;
  ProbeResult next, inverse;
  std::vector<ProbeResult> variants;  // kInverseVariants, in order
  ProbeResult next_clean, implicit;   // the official clean_target_probe and implicit_target
  ControlResult implicit_reference;   // 0.45 u_t^T C_t
};

ProbeSummary probe_preset(const Context& ctx, const std::string& preset) {
  std::vector<ProbeResult> next, inverse, next_clean, implicit;
  std::vector<ControlResult> references;
  std::vector<std::vector<ProbeResult>> variants(kInverseVariants.size());
  ProbeSummary summary;
  ProbeOptions clean;
  clean.clean_target = true;
  for (uint64_t seed : ctx.seeds_of(preset)) {
    const LoadedRun run = load_run(ctx.run_dir({preset, seed}));
    summary.dim = run.cfg.model.data_dim;
    summary.layers = run.cfg.model.layers();
    std::vector<TokenBatch> batches;
    std::vector<LayerActivations> acts;
    for (uint64_t test_seed : ctx.scale.test_seeds) {
      batches.push_back(
          make_token_batch(run.cfg, test_seed, RngPurpose::Probe, 0, ctx.scale.test_batch));
      acts.push_back(collect_activations(run.model, run.state.params.data(), batches.back()));
    }
    for (size_t i = 0; i < batches.size(); ++i) {
      next.push_back(run_probe(acts[i], batches[i], ProbeTarget::Next, {}));
      inverse.push_back(run_probe(acts[i], batches[i], ProbeTarget::InverseCurrent, {}));
      next_clean.push_back(run_probe(acts[i], batches[i], ProbeTarget::Next, clean));
      implicit.push_back(run_probe(acts[i], batches[i], ProbeTarget::Implicit, {}));
      references.push_back(implicit_reference(batches[i]));
      const size_t j = (i + 1) % batches.size();  // held out: scored on the next test seed
      for (size_t v = 0; v < kInverseVariants.size(); ++v) {
        ProbeOptions options;
        if (!kInverseVariants[v].held_out) options.outlier_z = kInverseVariants[v].outlier_z;
        variants[v].push_back(
            kInverseVariants[v].held_out
                ? run_held_out_probe(acts[i], batches[i], acts[j], batches[j],
                                     ProbeTarget::InverseCurrent, options)
                : run_probe(acts[i], batches[i], ProbeTarget::InverseCurrent, options));
      }
    }
  }
  summary.next = average_probes(next);
  summary.inverse = average_probes(inverse);
  for (const auto& v : variants) summary.variants.push_back(average_probes(v));
  summary.next_clean = average_probes(next_clean);
  summary.implicit = average_probes(implicit);
  summary.implicit_reference = references.front();
  for (size_t t = 0; t < summary.implicit_reference.loss.size(); ++t) {
    double sum = 0.0;
    for (const ControlResult& r : references) sum += r.loss[t];
    summary.implicit_reference.loss[t] = sum / double(references.size());
  }
  return summary;
}

// "1.53 -> 0.48 -> 0.12": the late mean of every layer.
std::string layer_trace(const ProbeResult& r, int dim) {
  std::vector<std::string> v;
  for (int l = 0; l <= r.layers; ++l) v.push_back(num(late_mean(r, l, dim)));
  return fmt::format("{}", fmt::join(v, " -> "));
}

// Rows "target, layer, loss (t > D), R^2 at T/2" of every probe of the summary.
void add_probe_rows(Table& table, const std::string& model, const ProbeSummary& p) {
  auto add = [&](const std::string& name, const ProbeResult& r) {
    for (int l = 0; l <= p.layers; ++l) {
      std::vector<std::string> row = {name, std::to_string(l), num(late_mean(r, l, p.dim)),
                                      fmt::format("{:.3f}", r.r2_at(r.seq_len / 2, l))};
      if (!model.empty()) row.insert(row.begin(), model);
      table.rows.push_back(std::move(row));
    }
  };
  add("next", p.next);
  add("inverse (in-sample, all samples)", p.inverse);
  for (size_t v = 0; v < kInverseVariants.size(); ++v) add(kInverseVariants[v].name, p.variants[v]);
  add("next, clean target (entries < 2)", p.next_clean);
  add("implicit target 0.5 p^T C (plain MSE)", p.implicit);
  double reference = 0.0;
  for (int t = p.dim; t < p.implicit.seq_len; ++t)
    reference += p.implicit_reference.loss[size_t(t)];
  std::vector<std::string> row = {"implicit reference 0.45 u^T C (plain MSE)", "-",
                                  num(reference / std::max(1, p.implicit.seq_len - p.dim)), "-"};
  if (!model.empty()) row.insert(row.begin(), model);
  table.rows.push_back(row);
}

const char* const kProbeTableCaption =
    "Probe loss sum (AP - Y)^2 / 2B (B = kept samples), mean over t > D, over training and "
    "test seeds, and R^2 at t = T/2; layer 0 = input.";

const char* const kProbeMethodNote =
    "In-sample min-norm least-squares probes as in the official code; the criterion uses no "
    "outlier filter (the official threshold is not in its code), the filtered (z = 3, 2) and "
    "held-out (fitted on one test seed's batch, scored on the next one's) variants are "
    "reported next to it, as are the official clean_target_probe and implicit_target (the "
    "inverse probe's output p_t turned into s_hat_t+1 = 0.5 p_t^T sum_i<t s_i s_i+1^T, next to "
    "its reference 0.45 s_t^T sum_i<t s_i s_i+1^T; both plain MSE). t <= D is left out, where "
    "the preconditioned input is dominated by the ridge 1e-3.";

}  // namespace

Outcome analyse_probes(const Context& ctx) {
  const ProbeSummary p = probe_preset(ctx, "paper_lsa_2layer");
  bool next_falls = true;
  for (int l = 1; l <= p.layers; ++l)
    next_falls = next_falls && late_mean(p.next, l, p.dim) < late_mean(p.next, l - 1, p.dim);
  const double inverse_ratio =
      late_mean(p.inverse, p.layers, p.dim) / late_mean(p.inverse, 0, p.dim);
  Outcome out;
  out.verdict = verdict_of(next_falls && inverse_ratio <= 0.8);
  out.measured = fmt::format(
      "next-state probe loss over layers (t > D): {}; preconditioned-input probe loss last layer "
      "/ input = {:.3f} (criterion <= 0.8)",
      layer_trace(p.next, p.dim), inverse_ratio);
  Table table{std::string(kProbeTableCaption) + " The criterion reads the first two targets.",
              {"target", "layer", "loss (t > D)", "R^2 at t = T/2"},
              {}};
  add_probe_rows(table, "", p);
  out.tables.push_back(table);
  out.figures.push_back(ctx.figure(probe_figure({p.next, p.inverse}, nullptr), "probes",
                                   "Probe loss vs t per layer, mean over seeds"));
  out.notes.push_back(kProbeMethodNote);
  return out;
}

Outcome analyse_probes_depth(const Context& ctx) {
  Outcome out;
  Table table{std::string(kProbeTableCaption) + " The criterion reads the first two targets.",
              {"model", "target", "layer", "loss (t > D)", "R^2 at t = T/2"},
              {}};
  bool pass = true;
  std::vector<std::string> measured;
  for (const std::string preset : {"lsa_6layer", "softmax_6layer"}) {
    const ProbeSummary p = probe_preset(ctx, preset);
    const int mid = (p.layers + 1) / 2;
    const double input = late_mean(p.inverse, 0, p.dim), middle = late_mean(p.inverse, mid, p.dim),
                 last = late_mean(p.inverse, p.layers, p.dim);
    const bool next_falls = late_mean(p.next, p.layers, p.dim) < late_mean(p.next, 0, p.dim);
    pass = pass && next_falls && middle <= input && last <= middle && last <= 0.8 * input;
    measured.push_back(fmt::format("{}: inverse {}; next {}", preset, layer_trace(p.inverse, p.dim),
                                   layer_trace(p.next, p.dim)));
    add_probe_rows(table, preset, p);
    out.figures.push_back(
        ctx.figure(probe_figure({p.next, p.inverse}, nullptr), "probes_" + preset,
                   fmt::format("Probe loss vs t per layer of {}, mean over seeds", preset)));
  }
  out.verdict = verdict_of(pass);
  out.measured = fmt::format("probe loss (t > D) by layer, {}", fmt::join(measured, "; "));
  out.tables.push_back(table);
  out.notes.push_back(kProbeMethodNote);
  return out;
}

}  // namespace mesalab::report
