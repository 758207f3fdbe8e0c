#include "train/memory_estimate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "model/batch_runner.hpp"
#include "model/transformer.hpp"

namespace mesalab {

namespace {

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 5) bytes /= 1024.0, ++u;
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

// One runner of `batch` sequences: a workspace per thread and a loss partial per chunk.
double runner_bytes(const Transformer& model, int batch, int seq_len, int threads,
                    bool forward_only) {
  const WorkspaceSizes w =
      model.workspace_sizes(std::min(batch, kChunkSequences), seq_len, forward_only);
  const double chunks = std::ceil(double(batch) / kChunkSequences);
  return double(threads) * double(w.total()) * sizeof(float) + chunks * sizeof(double);
}

// Tokens and labels (float) of `batch` sequences, and their observed states (double) if kept
// (the test set keeps them, the training batch does not).
double batch_bytes(const RunConfig& cfg, double batch, bool with_states) {
  const double T = cfg.data.seq_len, D = cfg.model.data_dim, W = cfg.model.token_dim();
  return batch * (T * (W + D) * sizeof(float) + (with_states ? (T + 1) * D * sizeof(double) : 0));
}

}  // namespace

MemoryEstimate estimate_training_memory(const RunConfig& cfg, int threads) {
  threads = std::max(1, threads);
  ModelConfig model_config = cfg.model;
  model_config.mesa_recompute_inverses = cfg.train.mesa_recompute_inverses;
  const Transformer model(model_config);
  const double P = double(model.num_params());
  const int B = cfg.train.batch_size, TB = cfg.train.test_batch_size, T = cfg.data.seq_len;
  const double params = 4.0 * P * sizeof(float);  // params, m, v, gradients
  const double partials = std::ceil(double(B) / kChunkSequences) * P * sizeof(float);
  const double workspaces = runner_bytes(model, B, T, threads, /*forward_only=*/false) +
                            runner_bytes(model, TB, T, threads, /*forward_only=*/true);
  const double data = batch_bytes(cfg, B, /*with_states=*/false) +
                      batch_bytes(cfg, double(cfg.train.test_batches) * TB, /*with_states=*/true);
  MemoryEstimate e;
  e.bytes = params + partials + workspaces + data;
  e.breakdown = fmt::format(
      "parameters and optimizer {}, gradient partials {}, workspaces ({} threads) {}, batch and "
      "test set {}",
      human(params), human(partials), threads, human(workspaces), human(data));
  return e;
}

double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream fields(line.substr(13));
      double kib = 0.0;
      if (fields >> kib) return kib * 1024.0;
    }
  return 0.0;
}

void check_training_memory(const RunConfig& cfg, int threads, double available) {
  if (!(available > 0.0)) return;
  const MemoryEstimate e = estimate_training_memory(cfg, threads);
  if (e.bytes > available)
    fail(
        "this run needs about {} of memory ({}), but {} is available; reduce "
        "train.batch_size, train.test_batch_size, data.seq_len or the model",
        human(e.bytes), e.breakdown, human(available));
}

}  // namespace mesalab
