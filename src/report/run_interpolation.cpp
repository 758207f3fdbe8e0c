#include "report/run_interpolation.hpp"

#include <fstream>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "report/run_figures.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace mesalab::report {

namespace fs = std::filesystem;

InterpolationResult interpolate_run_dir(const fs::path& dir, const RunInterpolationOptions& o) {
  const RunConfig cfg = load_run_config(dir, o.overrides);
  if (const std::string why = revalg_d_ineligibility(cfg); !why.empty())
    fail("interpolate: {} has no RevAlg-d: {}", dir.string(), why);
  const Transformer model(cfg.model);
  const TrainState state = load_run_checkpoint(checkpoint_to_read(dir, ""), cfg, model);
  if (state.step != cfg.train.steps)
    fail("interpolate: {} has not finished (step {} of {}); its final weights define RevAlg-d",
         dir.string(), state.step, cfg.train.steps);
  const fs::path cache = dir / "interpolation.json";
  if (o.reuse && fs::exists(cache)) {
    std::ifstream in(cache);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.value("final_step", int64_t(-1)) == state.step &&
        j.value("alpha", -1.0) == o.alpha)
      return interpolation_from_json(j);
  }
  std::vector<std::pair<int64_t, double>> recorded;
  for (const MetricsLine& m : read_metrics(dir / "metrics.jsonl"))
    recorded.push_back({m.step, m.test_loss});
  const InterpolationResult r =
      interpolate_run(cfg, state.params, recorded, dir / "interpolation.tmp", o.alpha, o.progress);
  nlohmann::json j = interpolation_json(r);
  j["final_step"] = state.step;
  write_file_atomic(cache, j.dump(2) + "\n");
  return r;
}

}  // namespace mesalab::report
