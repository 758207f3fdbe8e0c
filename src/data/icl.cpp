#include "data/icl.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/sequences.hpp"

namespace mesalab {

std::string_view icl_format_name(IclFormat format) {
  switch (format) {
    case IclFormat::Plain:
      return "plain";
    case IclFormat::Eos:
      return "eos";
    case IclFormat::Prefix:
      return "prefix";
  }
  return "?";
}

IclFormat parse_icl_format(std::string_view name) {
  if (name == "plain") return IclFormat::Plain;
  if (name == "eos") return IclFormat::Eos;
  if (name == "prefix") return IclFormat::Prefix;
  fail("unknown in-context format '{}' (allowed: plain, eos, prefix)", name);
}

void IclConfig::validate() const {
  if (dim < 1) fail("icl: dim must be >= 1 (got {})", dim);
  if (seq_len < 6) fail("icl: seq_len must be >= 6 (got {}): two examples per format", seq_len);
  if (!(range > 0)) fail("icl: range must be > 0 (got {})", range);
  if (!(noise >= 0)) fail("icl: noise must be >= 0 (got {})", noise);
  if (format == IclFormat::Prefix && prefix_len < 1)
    fail("icl: the prefix format needs prefix_len >= 1 (got {})", prefix_len);
  if (switch_pair < 0 || switch_pair >= seq_len / 3)
    fail("icl: switch_pair must be in [0, {}) so that both tasks have examples (got {})",
         seq_len / 3, switch_pair);
  if (format == IclFormat::Prefix && prefix_len + 1 > seq_len - 1)
    fail("icl: a prefix of {} tokens leaves no example in a context of {} tokens", prefix_len,
         seq_len - 1);
}

IclLayout icl_layout(const IclConfig& cfg) {
  cfg.validate();
  const int T = cfg.seq_len;
  IclLayout lay;
  if (cfg.format == IclFormat::Plain) {
    lay.length = T - 1;
    for (int j = 0; j < T / 2; ++j) lay.x_positions.push_back(2 * j);
    return lay;
  }
  const int triplets = T / 3;
  lay.prefix = cfg.format == IclFormat::Prefix ? cfg.prefix_len : 0;
  lay.length = lay.prefix + 3 * triplets - 1;
  if (cfg.format == IclFormat::Prefix) lay.length = std::min(lay.length, T - 1);
  for (int j = 0; j < triplets; ++j) {
    const int x = lay.prefix + 3 * j;
    if (x < lay.length) lay.x_positions.push_back(x);
    if (x + 2 < lay.length) lay.eos_positions.push_back(x + 2);
  }
  return lay;
}

IclTasks draw_icl_tasks(const IclConfig& cfg, uint64_t seed, RngPurpose purpose, uint64_t step,
                        int batch) {
  cfg.validate();
  if (batch < 1) fail("icl: batch must be >= 1 (got {})", batch);
  const int D = cfg.dim, n = cfg.seq_len / 2;
  IclTasks tasks{batch, n, D, {}, {}};
  tasks.x.resize(size_t(batch) * n * D);
  tasks.y.resize(tasks.x.size());
  std::vector<double> w(size_t(D) * D);
  // y_j = W x_j for j in [first, n), without noise.
  const auto apply = [&](const double* x, double* y, int first) {
    for (int j = first; j < n; ++j)
      for (int r = 0; r < D; ++r) {
        double acc = 0.0;
        for (int c = 0; c < D; ++c) acc += w[size_t(r) * D + c] * x[size_t(j) * D + c];
        y[size_t(j) * D + r] = acc;
      }
  };
  std::vector<double> noise(size_t(n) * D, 0.0);
  for (int b = 0; b < batch; ++b) {
    Rng rng{seed, uint64_t(purpose), step, uint64_t(b)};
    sample_haar_orthogonal(D, rng, w.data());
    double* x = tasks.x.data() + size_t(b) * n * D;
    double* y = tasks.y.data() + size_t(b) * n * D;
    for (size_t i = 0; i < size_t(n) * D; ++i) x[i] = rng.uniform(-cfg.range, cfg.range);
    apply(x, y, 0);
    if (cfg.noise > 0)
      for (double& e : noise) e = cfg.noise * rng.normal();
    if (cfg.switch_pair > 0) {
      sample_haar_orthogonal(D, rng, w.data());
      apply(x, y, cfg.switch_pair);
    }
    for (size_t i = 0; i < size_t(n) * D; ++i) y[i] += noise[i];
  }
  return tasks;
}

IclBatch format_icl_batch(const IclConfig& cfg, const IclTasks& tasks,
                          const std::vector<double>& eos, const std::vector<double>& prefix) {
  const IclLayout lay = icl_layout(cfg);
  const int D = cfg.dim;
  if (tasks.dim != D || tasks.pairs != cfg.seq_len / 2)
    fail("icl: tasks of {} pairs of dim {} do not match the config ({} pairs of dim {})",
         tasks.pairs, tasks.dim, cfg.seq_len / 2, D);
  if (cfg.format != IclFormat::Plain && eos.size() != size_t(D))
    fail("icl: the {} format needs an EOS token of {} values (got {})", icl_format_name(cfg.format),
         D, eos.size());
  if (cfg.format == IclFormat::Prefix && prefix.size() != size_t(cfg.prefix_len) * D)
    fail("icl: the prefix format needs {} x {} prefix values (got {})", cfg.prefix_len, D,
         prefix.size());
  IclBatch out{tasks.batch, lay.length, D, {}};
  const size_t S = size_t(lay.length) + 1;  // data plus the final label
  out.sequences.assign(size_t(tasks.batch) * S * D, 0.0);
  std::vector<double> seq;
  for (int b = 0; b < tasks.batch; ++b) {
    const double* x = tasks.x.data() + size_t(b) * tasks.pairs * D;
    const double* y = tasks.y.data() + size_t(b) * tasks.pairs * D;
    seq.clear();
    const auto push = [&](const double* v) { seq.insert(seq.end(), v, v + D); };
    if (cfg.format == IclFormat::Plain) {
      for (int j = 0; j < tasks.pairs; ++j) {
        push(x + size_t(j) * D);
        push(y + size_t(j) * D);
      }
      if (cfg.seq_len % 2 == 1) push(x + size_t(tasks.pairs - 1) * D);
    } else {
      for (int p = 0; p < lay.prefix; ++p) push(prefix.data() + size_t(p) * D);
      for (int j = 0; j < cfg.seq_len / 3; ++j) {
        push(x + size_t(j) * D);
        push(y + size_t(j) * D);
        push(eos.data());
      }
    }
    std::copy_n(seq.begin(), S * D, out.sequences.begin() + b * S * D);
  }
  return out;
}

template <class S>
void icl_tokens(const IclBatch& batch, std::vector<S>& tokens, std::vector<S>& labels) {
  const size_t T = size_t(batch.length), D = size_t(batch.dim);
  tokens.resize(size_t(batch.batch) * T * D);
  labels.resize(tokens.size());
  for (size_t b = 0; b < size_t(batch.batch); ++b) {
    const double* seq = batch.sequences.data() + b * (T + 1) * D;
    for (size_t i = 0; i < T * D; ++i) {
      tokens[b * T * D + i] = S(seq[i]);
      labels[b * T * D + i] = S(seq[D + i]);
    }
  }
}

template void icl_tokens<float>(const IclBatch&, std::vector<float>&, std::vector<float>&);
template void icl_tokens<double>(const IclBatch&, std::vector<double>&, std::vector<double>&);

}  // namespace mesalab
