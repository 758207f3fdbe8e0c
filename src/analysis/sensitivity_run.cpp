#include "analysis/sensitivity_run.hpp"

#include "core/error.hpp"
#include "data/token_batch.hpp"
#include "train/trainer.hpp"

namespace mesalab {

std::vector<RunSensitivity> run_sensitivity(const std::filesystem::path& run_dir,
                                            bool every_checkpoint, int batch) {
  const RunConfig cfg = load_run_config(run_dir, {});
  const Transformer model(cfg.model);
  const TokenBatch data = sensitivity_batch(cfg, batch);
  FirstBlockSensitivity<float> sensitivity(model, batch, cfg.data.seq_len);
  std::vector<RunSensitivity> out;
  auto add = [&](int64_t step, const std::vector<float>& params, const std::string& source) {
    out.push_back({{step, sensitivity.compute(params.data(), data.tokens.data())}, source});
  };
  if (!every_checkpoint) {
    const std::filesystem::path ckpt = checkpoint_to_read(run_dir, "");
    const TrainState state = load_run_checkpoint(ckpt, cfg, model);
    add(state.step, state.params, ckpt.string());
    return out;
  }
  const auto checkpoints = step_checkpoints(run_dir);
  if (checkpoints.empty())
    fail("'{}' has no step checkpoints (ckpt/step_<N>.safetensors)", run_dir.string());
  std::vector<float> init(model.num_params());
  model.init_params(init.data(), cfg.train.seed);
  add(0, init, "init (train.seed)");
  for (const auto& [step, path] : checkpoints)
    add(step, load_run_checkpoint(path, cfg, model).params, path.string());
  return out;
}

}  // namespace mesalab
