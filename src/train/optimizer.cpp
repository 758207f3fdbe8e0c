#include "train/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace mesalab {

void OptimConfig::validate() const {
  if (!(peak_lr > 0)) fail("optim.lr must be > 0 (got {})", peak_lr);
  if (!(init_lr >= 0)) fail("optim.init_lr must be >= 0 (got {})", init_lr);
  if (!(end_lr >= 0)) fail("optim.end_lr must be >= 0 (got {})", end_lr);
  if (warmup_steps < 0) fail("optim.warmup_steps must be >= 0 (got {})", warmup_steps);
  if (use_schedule && decay_steps <= warmup_steps)
    fail("optim.decay_steps ({}) must be > optim.warmup_steps ({})", decay_steps, warmup_steps);
  if (!(weight_decay >= 0)) fail("optim.weight_decay must be >= 0 (got {})", weight_decay);
  if (!(beta1 >= 0 && beta1 < 1)) fail("optim.beta1 must be in [0, 1) (got {})", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) fail("optim.beta2 must be in [0, 1) (got {})", beta2);
  if (!(eps > 0)) fail("optim.eps must be > 0 (got {})", eps);
}

double learning_rate(const OptimConfig& cfg, int64_t step) {
  if (!cfg.use_schedule) return cfg.peak_lr;
  if (step < cfg.warmup_steps)
    return cfg.init_lr + (cfg.peak_lr - cfg.init_lr) * double(step) / double(cfg.warmup_steps);
  const double span = double(cfg.decay_steps - cfg.warmup_steps);
  const double progress = std::min(double(step - cfg.warmup_steps), span) / span;
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return cfg.end_lr + (cfg.peak_lr - cfg.end_lr) * cosine;
}

template <class S>
void adamw_step(const OptimConfig& cfg, int64_t step, S* params, const S* grads, S* m, S* v,
                size_t n) {
  const S lr = S(learning_rate(cfg, step));
  const S b1 = S(cfg.beta1), b2 = S(cfg.beta2), eps = S(cfg.eps), wd = S(cfg.weight_decay);
  const S clip = S(cfg.grad_clip);
  const S bias1 = S(1) - S(std::pow(cfg.beta1, double(step + 1)));
  const S bias2 = S(1) - S(std::pow(cfg.beta2, double(step + 1)));
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const S g = clip > 0 ? std::clamp(grads[i], -clip, clip) : grads[i];
    m[i] = b1 * m[i] + (S(1) - b1) * g;
    v[i] = b2 * v[i] + (S(1) - b2) * g * g;
    const S update = (m[i] / bias1) / (std::sqrt(v[i] / bias2) + eps) + wd * params[i];
    params[i] -= lr * update;
  }
}

template void adamw_step<float>(const OptimConfig&, int64_t, float*, const float*, float*, float*,
                                size_t);
template void adamw_step<double>(const OptimConfig&, int64_t, double*, const double*, double*,
                                 double*, size_t);

}  // namespace mesalab
