#pragma once
// The paper's optimizer (optax chain): element-wise gradient clipping to [-c, c], then
// AdamW with decoupled weight decay, scaled by a warmup-cosine learning-rate schedule.
#include <cstddef>
#include <cstdint>

namespace mesalab {

struct OptimConfig {
  double peak_lr = 3e-4;
  double init_lr = 0.0;
  double end_lr = 1e-5;
  int64_t warmup_steps = 1000;
  int64_t decay_steps = 20000;  // the step at which the cosine reaches end_lr (incl. warmup)
  bool use_schedule = true;     // false: constant peak_lr
  double weight_decay = 0.05;
  double grad_clip = 1.0;  // element-wise; <= 0 disables
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  void validate() const;
};

// optax.warmup_cosine_decay_schedule:
//   k < w:          lr = init + (peak - init) k / w
//   w <= k:         lr = end + (peak - end) (1 + cos(pi min(k - w, n - w) / (n - w))) / 2
double learning_rate(const OptimConfig& cfg, int64_t step);

// One update at step `step` (0-based; it uses lr = learning_rate(step) and bias corrections
// with count = step + 1). Per element, with g clipped to [-c, c]:
//   m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2
//   p <- p - lr ( m / (1 - b1^(step+1)) / (sqrt(v / (1 - b2^(step+1))) + eps) + wd p )
template <class S>
void adamw_step(const OptimConfig& cfg, int64_t step, S* params, const S* grads, S* m, S* v,
                size_t n);

}  // namespace mesalab
