// TrainOptions::stop_requested: how the Python module's Ctrl-C ends a run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;

RunConfig stop_test_config(int64_t steps) {
  return make_run_config(
      nullptr, {"data.seq_len=12", "train.batch_size=16", "train.test_batches=1",
                "train.test_batch_size=16", "train.eval_every=5", "train.checkpoint_every=10",
                "optim.warmup_steps=5", "optim.lr=0.003", "train.steps=" + std::to_string(steps)});
}

std::vector<nlohmann::json> metrics_lines(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(Trainer, StopRequestedCheckpointsTheStepAndResumesBitIdentically) {
  const fs::path dir = fs::temp_directory_path() / "mesalab_stop_requested_test";
  fs::remove_all(dir);
  TrainOptions quiet;
  quiet.progress = false;
  const TrainResult full = train(stop_test_config(30), dir / "full", quiet);

  // Between evaluations (every 5) and checkpoints (every 10): after the update of step 12.
  TrainOptions stopping = quiet;
  int polls = 0;
  stopping.stop_requested = [&] { return ++polls == 13; };
  const TrainResult stopped = train(stop_test_config(30), dir / "split", stopping);
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.steps, 13);
  EXPECT_TRUE(stopped.test_curve.empty());
  const Transformer model(stop_test_config(30).model);
  EXPECT_EQ(load_checkpoint(latest_checkpoint_path(dir / "split"), model).step, 13);
  EXPECT_FALSE(fs::exists(dir / "split" / "ckpt" / "step_13.safetensors"));
  EXPECT_EQ(metrics_lines(dir / "split").back()["step"], 10);

  TrainOptions resume = quiet;
  resume.resume = true;
  const TrainResult resumed = train(stop_test_config(30), dir / "split", resume);
  EXPECT_FALSE(resumed.stopped);
  EXPECT_EQ(resumed.test_curve, full.test_curve);
  const auto a = metrics_lines(dir / "full"), b = metrics_lines(dir / "split");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]);
    EXPECT_EQ(a[i]["train_loss"], b[i]["train_loss"]) << "line " << i;
    EXPECT_EQ(a[i]["test_loss"], b[i]["test_loss"]) << "line " << i;
  }
  const TrainState sa = load_checkpoint(latest_checkpoint_path(dir / "full"), model);
  const TrainState sb = load_checkpoint(latest_checkpoint_path(dir / "split"), model);
  EXPECT_EQ(sa.params, sb.params);
  EXPECT_EQ(sa.adam_v, sb.adam_v);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mesalab
