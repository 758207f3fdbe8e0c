#include "analysis/prompt_tuning.hpp"

#include "analysis/icl.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "model/batch_runner.hpp"
#include "train/optimizer.hpp"

namespace mesalab {

// prompt_loss on a runner made for tasks.batch sequences of icl_layout(cfg).length tokens
// (the tuner makes it once for all its steps).
template <class S>
static PromptLoss prompt_loss_on(BatchRunner<S>& runner, const Transformer& model,
                                 const std::vector<S>& params, const IclConfig& cfg,
                                 const IclTasks& tasks, const std::vector<double>& eos,
                                 const std::vector<double>& prefix, PromptPart what) {
  const IclLayout lay = icl_layout(cfg);
  const IclBatch data = format_icl_batch(cfg, tasks, eos, prefix);
  const int B = data.batch, T = lay.length, D = cfg.dim;
  std::vector<S> tokens, labels;
  icl_tokens(data, tokens, labels);
  std::vector<char> scored(size_t(T), 0);
  for (int x : lay.x_positions) scored[size_t(x)] = 1;
  std::vector<S> grads(model.num_params()), grad_tokens(tokens.size());
  PromptLoss out;
  out.loss = runner.scored_loss_and_grad(params.data(), tokens.data(), labels.data(), scored,
                                         1.0 / (double(B) * double(lay.x_positions.size())),
                                         grads.data(), grad_tokens.data());
  const auto add_position = [&](int t, double* g) {
    for (int b = 0; b < B; ++b)
      for (int d = 0; d < D; ++d) g[d] += double(grad_tokens[(size_t(b) * T + t) * D + d]);
  };
  if (what == PromptPart::Eos) {
    out.grad.assign(size_t(D), 0.0);
    for (int t : lay.eos_positions) add_position(t, out.grad.data());
  } else {
    out.grad.assign(size_t(lay.prefix) * D, 0.0);
    for (int p = 0; p < lay.prefix; ++p) add_position(p, out.grad.data() + size_t(p) * D);
  }
  return out;
}

template <class S>
PromptLoss prompt_loss(const Transformer& model, const std::vector<S>& params, const IclConfig& cfg,
                       const IclTasks& tasks, const std::vector<double>& eos,
                       const std::vector<double>& prefix, PromptPart what) {
  check_icl_model(model.config(), cfg);
  BatchRunner<S> runner(model, tasks.batch, icl_layout(cfg).length);
  return prompt_loss_on(runner, model, params, cfg, tasks, eos, prefix, what);
}

template PromptLoss prompt_loss<float>(const Transformer&, const std::vector<float>&,
                                       const IclConfig&, const IclTasks&,
                                       const std::vector<double>&, const std::vector<double>&,
                                       PromptPart);
template PromptLoss prompt_loss<double>(const Transformer&, const std::vector<double>&,
                                        const IclConfig&, const IclTasks&,
                                        const std::vector<double>&, const std::vector<double>&,
                                        PromptPart);

double official_tune_lr(PromptPart what) { return what == PromptPart::Eos ? 1e-3 : 9e-4; }
int official_tune_batch(PromptPart what) { return what == PromptPart::Eos ? 64 : 128; }

std::vector<double> initial_prompt_tokens(PromptPart what, int count, int dim, uint64_t seed) {
  Rng rng{seed, uint64_t(RngPurpose::Prompt), ~uint64_t(0), uint64_t(what)};
  std::vector<double> v(size_t(count) * size_t(dim));
  for (double& x : v) x = rng.normal();
  return v;
}

PromptTuneResult tune_prompt(const Transformer& model, const std::vector<float>& params,
                             const IclConfig& cfg, std::vector<double> eos,
                             std::vector<double> prefix, const PromptTuneOptions& options) {
  const IclFormat needed = options.what == PromptPart::Eos ? IclFormat::Eos : IclFormat::Prefix;
  if (cfg.format != needed)
    fail("prompt tuning of the {} needs the {} format (got {})",
         options.what == PromptPart::Eos ? "EOS token" : "prefix", icl_format_name(needed),
         icl_format_name(cfg.format));
  if (options.steps < 0 || options.batch < 1 || !(options.lr > 0))
    fail("prompt tuning: steps >= 0, batch >= 1 and lr > 0 needed (got {}, {}, {})", options.steps,
         options.batch, options.lr);
  OptimConfig adam;
  adam.peak_lr = options.lr;
  adam.use_schedule = false;
  adam.weight_decay = 0.0;
  adam.grad_clip = 0.0;
  std::vector<double>& tuned = options.what == PromptPart::Eos ? eos : prefix;
  std::vector<double> m(tuned.size(), 0.0), v(tuned.size(), 0.0);
  check_icl_model(model.config(), cfg);
  BatchRunner<float> runner(model, options.batch, icl_layout(cfg).length);
  PromptTuneResult result;
  for (int step = 0; step < options.steps; ++step) {
    const IclTasks tasks =
        draw_icl_tasks(cfg, options.seed, RngPurpose::Prompt, uint64_t(step), options.batch);
    const PromptLoss l =
        prompt_loss_on(runner, model, params, cfg, tasks, eos, prefix, options.what);
    result.losses.push_back(l.loss);
    adamw_step<double>(adam, step, tuned.data(), l.grad.data(), m.data(), v.data(), tuned.size());
    if (options.on_step) options.on_step(step, l.loss);
  }
  result.eos = std::move(eos);
  result.prefix = std::move(prefix);
  return result;
}

}  // namespace mesalab
