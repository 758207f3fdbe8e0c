#include "train/trainer.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "analysis/baselines.hpp"
#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "model/batch_runner.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluation.hpp"
#include "train/memory_estimate.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("mesalab_trainer_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A small, fast run: T = 20, B = 16.
RunConfig small_config(std::vector<std::string> extra = {}) {
  std::vector<std::string> sets = {
      "data.seq_len=20",          "train.batch_size=16",   "train.test_batches=1",
      "train.test_batch_size=16", "train.eval_every=5",    "train.checkpoint_every=10",
      "optim.warmup_steps=5",     "optim.decay_steps=100", "optim.lr=0.003"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return make_run_config(nullptr, sets);
}

std::vector<nlohmann::json> read_metrics(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(Determinism, OneAndTwoThreadsGiveBitIdenticalLosses) {
  const RunConfig cfg = small_config();
  const Transformer model(cfg.model);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    BatchRunner<float> runner(model, 20, cfg.data.seq_len);  // 20: a partial last chunk
    std::vector<float> params(model.num_params()), grads(model.num_params());
    std::vector<float> m(model.num_params(), 0.f), v(model.num_params(), 0.f);
    model.init_params(params.data(), 3);
    std::vector<double> losses;
    for (int step = 0; step < 20; ++step) {
      const TokenBatch b = make_token_batch(cfg, 3, RngPurpose::TrainData, step, 20);
      losses.push_back(
          runner.loss_and_grad(params.data(), b.tokens.data(), b.labels.data(), grads.data()));
      adamw_step(cfg.optim, step + 10, params.data(), grads.data(), m.data(), v.data(),
                 params.size());
    }
    losses.push_back(params[17]);
    return losses;
  };
  const auto one = run(1), two = run(2);
  omp_set_num_threads(omp_get_num_procs());
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], two[i]) << "step " << i;
  EXPECT_NE(one[0], one[19]);  // the model did train
}

TEST(Trainer, ResumeIsBitIdenticalToAnUninterruptedRun) {
  const fs::path dir = fresh_dir("resume");
  TrainOptions quiet;
  quiet.progress = false;
  const TrainResult full = train(small_config({"train.steps=30"}), dir / "full", quiet);
  train(small_config({"train.steps=20"}), dir / "split", quiet);
  TrainOptions resume = quiet;
  resume.resume = true;
  const TrainResult resumed =
      train(load_run_config(dir / "split", {"train.steps=30"}), dir / "split", resume);
  EXPECT_EQ(full.test_loss, resumed.test_loss);
  const auto a = read_metrics(dir / "full"), b = read_metrics(dir / "split");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]);
    EXPECT_EQ(a[i]["train_loss"], b[i]["train_loss"]) << "line " << i;
    EXPECT_EQ(a[i]["test_loss"], b[i]["test_loss"]) << "line " << i;
  }
  const Transformer model(small_config().model);
  const TrainState sa = load_checkpoint(latest_checkpoint_path(dir / "full"), model);
  const TrainState sb = load_checkpoint(latest_checkpoint_path(dir / "split"), model);
  EXPECT_EQ(sa.step, 30);
  EXPECT_EQ(sa.params, sb.params);
  EXPECT_EQ(sa.adam_m, sb.adam_m);
  EXPECT_EQ(sa.adam_v, sb.adam_v);
  EXPECT_EQ(sa.train_loss_sum, sb.train_loss_sum);
}

TEST(Trainer, ShortRunLearnsWellBelowTheZeroPredictor) {
  // 150 steps of batch 32 at lr 3e-3 (short warmup): the 2-layer LSA must beat the zero
  // predictor (mean per-step loss ~1.68) by a wide margin on the fixed test set.
  const fs::path dir = fresh_dir("learn");
  TrainOptions quiet;
  quiet.progress = false;
  const RunConfig cfg = make_run_config(
      nullptr,
      {"train.steps=150", "train.batch_size=32", "train.test_batches=1", "train.test_batch_size=64",
       "train.eval_every=50", "optim.warmup_steps=20", "optim.decay_steps=150", "optim.lr=0.003"});
  const TrainResult r = train(cfg, dir / "run", quiet);
  const auto test = make_test_set(cfg, cfg.train.seed, 1, 64);
  const double zero = curve_mean(zero_predictor_curve(test[0].states.data(), 64, 50, 10));
  EXPECT_GT(zero, 1.4);
  EXPECT_LT(r.test_loss, 0.6 * zero) << "test loss " << r.test_loss << " vs zero " << zero;
}

TEST(Trainer, FullTransformerOnRawTokensLearnsAFixedTransition) {
  // With one W shared by every sequence (data.kind = fixed) the next state is a fixed linear
  // function of the current one, which the embedding path Win ... Wout of a full transformer
  // (softmax then linear attention, pre-LN, MLP, positional codes) learns in a few hundred
  // steps: the loss must fall far below the zero predictor's.
  const fs::path dir = fresh_dir("raw_fixed");
  TrainOptions quiet;
  quiet.progress = false;
  const RunConfig cfg = small_config(
      {"data.kind=fixed", "data.tokens=raw", "model.layer_norm=true", "model.mlp=true",
       "model.positional_codes=true", R"(model.layer=["softmax","lsa"])", "train.steps=200",
       "optim.warmup_steps=20", "optim.decay_steps=200", "train.eval_every=50"});
  ASSERT_EQ(cfg.model.input_dim, 10);
  const TrainResult r = train(cfg, dir / "run", quiet);
  const auto test = make_test_set(cfg, cfg.train.seed, 1, 16);
  const double zero = curve_mean(zero_predictor_curve(test[0].states.data(), 16, 20, 10));
  EXPECT_LT(r.test_loss, 0.05 * zero) << "test loss " << r.test_loss << " vs zero " << zero;
}

// Each generator with each token format trains, and the plumbing is right: at step 0 (weights
// ~2e-4) the logged test loss is that of the untrained model's prediction (zero, or the copy
// o_t for delay tokens) on the run's own test observations, which fails if labels, observed
// dims or the test set were misaligned.
TEST(Trainer, EveryDataKindAndTokenFormatTrainsOnItsOwnLabels) {
  TrainOptions quiet;
  quiet.progress = false;
  for (const char* kind : {"linear", "contracting", "nonlinear", "fixed"}) {
    for (const char* tokens : {"constructed", "raw", "delay"}) {
      SCOPED_TRACE(std::string(kind) + " data, " + tokens + " tokens");
      std::vector<std::string> sets = {std::string("data.kind=") + kind,
                                       std::string("data.tokens=") + tokens, "train.steps=3",
                                       "model.clip_act=0"};  // the copy o_t unclipped
      if (std::string(kind) != "nonlinear" && std::string(tokens) == "delay")
        sets.insert(sets.end(), {"data.obs_dim=4", "data.noise_obs=0.1", "model.embed_dim=18"});
      const RunConfig cfg = small_config(sets);
      const fs::path dir = fresh_dir(std::string("kinds_") + kind + "_" + tokens);
      const TrainResult r = train(cfg, dir / "run", quiet);
      EXPECT_TRUE(std::isfinite(r.test_loss));
      const TokenBatch test = make_test_set(cfg, cfg.train.seed, 1, cfg.train.test_batch_size)[0];
      // Delay tokens carry o_t in the channels the prediction is read from (as the official
      // ConstructedPartObsGenerator), so an untrained model is the copy predictor there.
      const bool delay = std::string(tokens) == "delay";
      const double expected = curve_mean(
          delay ? copy_predictor_curve(test.states.data(), test.batch, test.seq_len, test.dim)
                : zero_predictor_curve(test.states.data(), test.batch, test.seq_len, test.dim));
      EXPECT_NEAR(read_metrics(dir / "run").front()["test_loss"].get<double>(), expected,
                  1e-3 * expected);
    }
  }
}

TEST(Trainer, RefusesToOverwriteAnExistingRun) {
  const fs::path dir = fresh_dir("exists");
  fs::create_directories(dir / "run");
  write_file_atomic(dir / "run" / "notes.txt", "keep me");
  TrainOptions quiet;
  quiet.progress = false;
  EXPECT_THROW(train(small_config({"train.steps=1"}), dir / "run", quiet), Error);
  EXPECT_EQ(read_file(dir / "run" / "notes.txt"), "keep me");
  quiet.resume = true;
  EXPECT_THROW(train(small_config({"train.steps=1"}), dir / "run", quiet), Error);
}

TEST(Trainer, NonFiniteGradientStopsAndKeepsTheLastGoodCheckpoint) {
  const fs::path dir = fresh_dir("nan");
  TrainOptions quiet;
  quiet.progress = false;
  try {
    train(small_config({"train.steps=30", "debug.inject_nan_at_step=15"}), dir / "run", quiet);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.exit_code(), 1);
    EXPECT_NE(msg.find("step 15"), std::string::npos) << msg;
    EXPECT_NE(msg.find("layers.0.q"), std::string::npos) << msg;
  }
  const Transformer model(small_config().model);
  const TrainState s = load_checkpoint(latest_checkpoint_path(dir / "run"), model);
  EXPECT_EQ(s.step, 10);
  for (float p : s.params) ASSERT_TRUE(std::isfinite(p));
}

TEST(Checkpoint, CorruptTruncatedAndMismatchedCheckpointsAreClearErrors) {
  const fs::path dir = fresh_dir("ckpt");
  const RunConfig cfg = small_config();
  const Transformer model(cfg.model);
  TrainState s;
  s.step = 7;
  s.params.assign(model.num_params(), 0.5f);
  s.adam_m.assign(model.num_params(), 0.25f);
  s.adam_v.assign(model.num_params(), 0.125f);
  save_checkpoint(dir / "a.safetensors", model, cfg.resolved, s);
  const TrainState back = load_checkpoint(dir / "a.safetensors", model);
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.adam_m, s.adam_m);
  EXPECT_EQ(checkpoint_config(dir / "a.safetensors"), cfg.resolved);

  const std::string bytes = read_file(dir / "a.safetensors");
  write_file_atomic(dir / "half.safetensors", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(load_checkpoint(dir / "half.safetensors", model), Error);
  std::string flipped = bytes;
  flipped[3] = char(0x7f);  // absurd header length
  write_file_atomic(dir / "bad.safetensors", flipped);
  EXPECT_THROW(load_checkpoint(dir / "bad.safetensors", model), Error);
  EXPECT_THROW(load_checkpoint(dir / "missing.safetensors", model), Error);

  const Transformer other(small_config({"model.key_size=5"}).model);
  try {
    load_checkpoint(dir / "a.safetensors", other);
    FAIL() << "expected a shape mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.q"), std::string::npos) << e.what();
  }
}

// Recomputing the mesa inverses in the backward changes memory and time, not one bit; the
// key may change on resume.
TEST(Trainer, MesaRecomputedInversesTrainBitIdentically) {
  const fs::path dir = fresh_dir("recompute");
  TrainOptions quiet;
  quiet.progress = false;
  const std::vector<std::string> mesa = {"model.layer=mesa", "model.layers=2", "train.steps=10"};
  std::vector<std::string> recompute = mesa;
  recompute.push_back("train.mesa_recompute_inverses=true");
  train(small_config(mesa), dir / "stored", quiet);
  train(small_config(recompute), dir / "recomputed", quiet);
  const Transformer model(small_config(mesa).model);
  const TrainState a = load_checkpoint(latest_checkpoint_path(dir / "stored"), model);
  const TrainState b = load_checkpoint(latest_checkpoint_path(dir / "recomputed"), model);
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.adam_v, b.adam_v);
  EXPECT_LT(estimate_training_memory(small_config(recompute), 2).bytes,
            estimate_training_memory(small_config(mesa), 2).bytes);
  EXPECT_TRUE(run_config_differences(small_config(mesa).resolved, small_config(recompute).resolved)
                  .empty());
}

// A checkpoint written before the data generator changed (no "data_generator" key, i.e.
// version 1) is not resumed on other data unless asked; the metrics carry the phase times.
TEST(Trainer, ResumeRefusesACheckpointOfAnotherDataGenerator) {
  const fs::path dir = fresh_dir("generator");
  TrainOptions quiet;
  quiet.progress = false;
  train(small_config({"train.steps=10"}), dir / "run", quiet);
  const nlohmann::json last = read_metrics(dir / "run").back();
  for (const char* phase : {"data", "model", "optimizer", "evaluation", "checkpoint"})
    EXPECT_TRUE(last["phase_s"].contains(phase)) << last.dump();
  EXPECT_GT(last["phase_s"]["model"].get<double>(), 0.0);
  const double forward_share = last["phase_s"]["model_forward_share"].get<double>();
  EXPECT_GT(forward_share, 0.0);
  EXPECT_LT(forward_share, 1.0);

  SafetensorsFile file = load_safetensors(latest_checkpoint_path(dir / "run"));
  EXPECT_EQ(file.metadata.at("data_generator"), std::to_string(kDataGeneratorVersion));
  file.metadata.erase("data_generator");
  save_safetensors(latest_checkpoint_path(dir / "run"), file);
  TrainOptions resume = quiet;
  resume.resume = true;
  const RunConfig longer = load_run_config(dir / "run", {"train.steps=20"});
  try {
    train(longer, dir / "run", resume);
    ADD_FAILURE() << "resumed on another data generator";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data generator version 1 -> 2"), std::string::npos)
        << e.what();
  }
  resume.allow_config_change = true;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(train(longer, dir / "run", resume).steps, 20);
  ::testing::internal::GetCapturedStderr();
  EXPECT_NE(read_file(dir / "run" / "config_changes.log").find("data generator version 1 -> 2"),
            std::string::npos);
}

TEST(Checkpoint, FlippedTensorBytesExtraTensorsAndOldFilesWithoutChecksum) {
  const fs::path dir = fresh_dir("ckpt_integrity");
  const RunConfig cfg = small_config({"model.layers=3"});
  const Transformer model(cfg.model);
  TrainState s;
  s.step = 3;
  s.params.assign(model.num_params(), 0.5f);
  s.adam_m.assign(model.num_params(), 0.25f);
  s.adam_v.assign(model.num_params(), 0.125f);
  save_checkpoint(dir / "a.safetensors", model, cfg.resolved, s);
  EXPECT_TRUE(verify_checkpoint_file(dir / "a.safetensors"));

  // One flipped bit in the last tensor's data, header intact.
  std::string bytes = read_file(dir / "a.safetensors");
  bytes[bytes.size() - 3] ^= 0x10;
  write_file_atomic(dir / "flipped.safetensors", bytes);
  for (auto load :
       {std::function<void()>([&] { load_checkpoint(dir / "flipped.safetensors", model); }),
        std::function<void()>([&] { verify_checkpoint_file(dir / "flipped.safetensors"); })}) {
    try {
      load();
      ADD_FAILURE() << "a flipped byte loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
    }
  }

  // A 3-layer checkpoint on a 2-layer model: the extra layer is an error, not ignored.
  const Transformer fewer(small_config({"model.layers=2"}).model);
  try {
    load_checkpoint(dir / "a.safetensors", fewer);
    ADD_FAILURE() << "a 3-layer checkpoint loaded into a 2-layer model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.2"), std::string::npos) << e.what();
  }

  // Written before the checksum existed: loads, with a note.
  SafetensorsFile old = load_safetensors(dir / "a.safetensors");
  old.metadata.erase("data_checksum");
  save_safetensors(dir / "old.safetensors", old);
  ::testing::internal::CaptureStderr();
  const TrainState back = load_checkpoint(dir / "old.safetensors", model);
  const std::string note = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(back.params, s.params);
  EXPECT_NE(note.find("no data checksum"), std::string::npos) << note;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(verify_checkpoint_file(dir / "old.safetensors"));
  ::testing::internal::GetCapturedStderr();
}

}  // namespace
}  // namespace mesalab

namespace mesalab {
namespace {

TEST(Trainer, OneMesaLayerBeatsTunedGdOneInAShortRun) {
  // Paper claim at small scale: a single mesa layer (an exact in-context least-squares
  // solver) beats the best single gradient step. 200 steps, batch 32, lr 3e-3.
  const fs::path dir = fresh_dir("mesa");
  TrainOptions quiet;
  quiet.progress = false;
  const RunConfig cfg = make_run_config(
      nullptr, {"model.layer=mesa", "model.layers=1", "train.steps=200", "train.batch_size=32",
                "train.test_batches=1", "train.test_batch_size=64", "train.eval_every=100",
                "optim.warmup_steps=20", "optim.decay_steps=200", "optim.lr=0.003"});
  const TrainResult r = train(cfg, dir / "run", quiet);
  const auto test = make_test_set(cfg, cfg.train.seed, 1, 64);
  const auto tuning = sample_states(cfg.data, cfg.train.seed, RngPurpose::Tuning, 0, 512);
  const double eta = tune_gd_eta(tuning.data(), 512, 50, 10);
  const double gd1 = curve_mean(gd1_curve(test[0].states.data(), 64, 50, 10, eta));
  EXPECT_GT(gd1, 0.8);
  EXPECT_LT(r.test_loss, gd1) << "mesa test loss " << r.test_loss << " vs GD-1 " << gd1;
  std::printf("1-layer mesa after 200 steps: %.4f, tuned GD-1: %.4f\n", r.test_loss, gd1);
}

}  // namespace
}  // namespace mesalab
