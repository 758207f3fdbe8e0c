// train.sensitivity_every records the first block's sensitivity table without changing a bit
// of training, truncates its records on resume as metrics.jsonl, and records what the post-hoc
// analysis of the step checkpoints computes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "analysis/sensitivity_run.hpp"
#include "io/atomic_file.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("mesalab_sensitivity_option_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A raw-token softmax -> LSA model with the first block's query/key codes: T = 12, B = 8.
RunConfig tiny_config(std::vector<std::string> extra) {
  std::vector<std::string> sets = {"data.tokens=raw",
                                   "data.dim=3",
                                   "data.seq_len=12",
                                   "model.embed_dim=8",
                                   "model.heads=2",
                                   "model.key_size=4",
                                   "model.layer=[\"softmax\", \"lsa\"]",
                                   "model.positional_codes_qk=true",
                                   "model.init_std=0.05",
                                   "train.batch_size=8",
                                   "train.test_batches=1",
                                   "train.test_batch_size=8",
                                   "train.eval_every=5",
                                   "train.checkpoint_every=10",
                                   "optim.warmup_steps=3",
                                   "optim.lr=0.003"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return make_run_config(nullptr, sets);
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Trainer, SensitivityRecordsLeaveTrainingBitIdenticalAndResumeTruncatesThem) {
  const fs::path dir = fresh_dir("bits");
  TrainOptions quiet;
  quiet.progress = false;
  const RunConfig off = tiny_config({"train.steps=20"});
  const RunConfig on = tiny_config({"train.steps=20", "train.sensitivity_every=5"});
  EXPECT_TRUE(run_config_differences(off.resolved, on.resolved).empty());
  train(off, dir / "off", quiet);
  train(on, dir / "on", quiet);
  EXPECT_FALSE(fs::exists(dir / "off" / "sensitivity.jsonl"));
  const Transformer model(off.model);
  for (const std::string& file : {"latest.safetensors", "step_10.safetensors"}) {
    const TrainState a = load_checkpoint(dir / "off" / "ckpt" / file, model);
    const TrainState b = load_checkpoint(dir / "on" / "ckpt" / file, model);
    EXPECT_EQ(a.step, b.step);
    EXPECT_EQ(a.params, b.params) << file;
    EXPECT_EQ(a.adam_m, b.adam_m) << file;
    EXPECT_EQ(a.adam_v, b.adam_v) << file;
    EXPECT_EQ(a.train_loss_sum, b.train_loss_sum) << file;
  }
  const std::vector<SensitivityRecord> full =
      parse_sensitivity_jsonl(read_file(dir / "on" / "sensitivity.jsonl"), "on");
  ASSERT_EQ(full.size(), 5u);  // steps 0, 5, 10, 15 and the end, 20
  for (size_t r = 0; r < full.size(); ++r) EXPECT_EQ(full[r].step, int64_t(5 * r));
  EXPECT_EQ(full[0].table.targets, (std::vector<int>{1, 5, 11}));
  EXPECT_EQ(full[0].table.batch, kSensitivityBatch);

  // Stopped at step 10, then resumed to 20: step 10's end-of-run record is replaced.
  train(tiny_config({"train.steps=10", "train.sensitivity_every=5"}), dir / "split", quiet);
  EXPECT_EQ(lines_of(dir / "split" / "sensitivity.jsonl").size(), 3u);
  TrainOptions resume = quiet;
  resume.resume = true;
  train(load_run_config(dir / "split", {"train.steps=20"}), dir / "split", resume);
  const std::vector<SensitivityRecord> split =
      parse_sensitivity_jsonl(read_file(dir / "split" / "sensitivity.jsonl"), "split");
  ASSERT_EQ(split.size(), full.size());
  for (size_t r = 0; r < full.size(); ++r) {
    EXPECT_EQ(split[r].step, full[r].step);
    EXPECT_EQ(split[r].table.values, full[r].table.values) << "record " << r;
  }

  // The post-hoc tables of the initialisation and the step checkpoints are the records.
  const std::vector<RunSensitivity> post = run_sensitivity(dir / "off", true, kSensitivityBatch);
  ASSERT_EQ(post.size(), 3u);  // init, step_10, step_20
  EXPECT_EQ(post[0].source, "init (train.seed)");
  for (const auto& [p, r] : {std::pair{0, 0}, std::pair{1, 2}, std::pair{2, 4}}) {
    EXPECT_EQ(post[size_t(p)].record.step, full[size_t(r)].step);
    EXPECT_EQ(post[size_t(p)].record.table.values, full[size_t(r)].table.values)
        << "step " << full[r].step;
  }
  // The records sit with the run's outputs: --force starts them afresh.
  TrainOptions force = quiet;
  force.force = true;
  train(off, dir / "on", force);
  EXPECT_FALSE(fs::exists(dir / "on" / "sensitivity.jsonl"));
}

}  // namespace
}  // namespace mesalab
