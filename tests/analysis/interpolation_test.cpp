// Interpolation with RevAlg-d: the interpolated transformer's forward equals a direct
// evaluation of A = (1 - a) Q K^T + a Q' K'^T, out = (1 - a) O (A V) + a O' (A V') with the
// residual and clip, and at a = 0 and 1 it is exactly the trained model resp. RevAlg-d; the
// replay of a run reproduces its recorded test losses bit for bit.
#include "analysis/interpolation.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "cli/cli_util.hpp"
#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace mesalab {
namespace {

constexpr int D = 2, E = 4 * D, H = 2, K = 3, L = 2, B = 2, T = 5;

ModelConfig trained_config() {
  ModelConfig c;
  c.data_dim = D;
  c.embed_dim = E;
  c.heads = H;
  c.key_size = K;
  c.mixers = {MixerKind::Linear, MixerKind::Linear};
  c.clip_act = 1.5;
  return c;
}

std::vector<double> random_values(size_t n, unsigned seed, double scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = normal(gen);
  return v;
}

std::vector<RevAlgDLayer> random_scalars(unsigned seed) {
  const std::vector<double> v = random_values(size_t(L) * H * 2 * 16, seed, 0.3);
  std::vector<RevAlgDLayer> layers(L, RevAlgDLayer(H));
  size_t i = 0;
  for (auto& layer : layers)
    for (auto& head : layer)
      for (int a = 0; a < kTokenSlots; ++a)
        for (int b = 0; b < kTokenSlots; ++b) {
          head.q[a][b] = v[i++];
          head.v[a][b] = v[i++];
        }
  return layers;
}

// The final residual stream (B, T, E) of `model` on `tokens`.
std::vector<double> final_stream(const Transformer& model, const std::vector<double>& params,
                                 const std::vector<double>& tokens) {
  auto ws = model.make_workspace<double>(B, T);
  model.forward<double>(params.data(), tokens.data(), B, ws);
  const double* out = ws.layer(model.config().layers() - 1).output;
  return {out, out + size_t(B) * T * E};
}

struct Fixture {
  Transformer trained{trained_config()};
  Transformer revalg{revalg_d_config(trained_config())};
  Transformer mixed{interpolated_config(trained_config())};
  std::vector<double> trained_params = random_values(trained.num_params(), 5, 0.4);
  std::vector<RevAlgDLayer> scalars = random_scalars(9);
  std::vector<double> revalg_params = revalg_d_params(revalg, scalars);
  std::vector<double> tokens = random_values(size_t(B) * T * E, 13, 0.5);
  std::vector<double> mixed_params(double alpha) const {
    return interpolated_params(trained, trained_params.data(), revalg, revalg_params.data(), mixed,
                               alpha);
  }
};

TEST(Interpolation, EndpointsAreTheTrainedModelAndRevAlgD) {
  const Fixture f;
  EXPECT_EQ(f.mixed.config().key_size, K + E);
  const auto at0 = final_stream(f.mixed, f.mixed_params(0.0), f.tokens);
  const auto at1 = final_stream(f.mixed, f.mixed_params(1.0), f.tokens);
  const auto trained = final_stream(f.trained, f.trained_params, f.tokens);
  const auto revalg = final_stream(f.revalg, f.revalg_params, f.tokens);
  for (size_t i = 0; i < at0.size(); ++i) {
    EXPECT_NEAR(at0[i], trained[i], 1e-13) << i;
    EXPECT_NEAR(at1[i], revalg[i], 1e-13) << i;
  }
  EXPECT_GT(std::abs(trained[7] - revalg[7]), 1e-3) << "the endpoints must differ";
}

TEST(Interpolation, ForwardEqualsTheFormula) {
  const Fixture f;
  const double alpha = 0.3;  // not 1/2, where swapping the two weights would go unseen
  const auto out = final_stream(f.mixed, f.mixed_params(alpha), f.tokens);
  const int HK = H * K;
  for (int b = 0; b < B; ++b) {
    RowMatrix<double> x = mat(f.tokens.data() + size_t(b) * T * E, T, E);
    for (int l = 0; l < L; ++l) {
      const LayerOffsets& o = f.trained.layer(l);
      const auto wq = mat(f.trained_params.data() + o.q, E, HK);
      const auto wk = mat(f.trained_params.data() + o.k, E, HK);
      const auto wv = mat(f.trained_params.data() + o.v, E, HK);
      const auto wo = mat(f.trained_params.data() + o.o, HK, E);
      RowMatrix<double> next = x;
      for (int h = 0; h < H; ++h) {
        // RevAlg-d's kernels: Q' = q (x) I, K' = I, V' = v (x) I, O' = I.
        RowMatrix<double> q_rev = RowMatrix<double>::Zero(E, E), v_rev = q_rev;
        for (int a = 0; a < kTokenSlots; ++a)
          for (int c = 0; c < kTokenSlots; ++c)
            for (int j = 0; j < D; ++j) {
              q_rev(a * D + j, c * D + j) = f.scalars[l][h].q[a][c];
              v_rev(a * D + j, c * D + j) = f.scalars[l][h].v[a][c];
            }
        const RowMatrix<double> q = x * wq.middleCols(h * K, K), k = x * wk.middleCols(h * K, K);
        const RowMatrix<double> v = x * wv.middleCols(h * K, K);
        const RowMatrix<double> q2 = x * q_rev, v2 = x * v_rev;  // k2 = x
        for (int t = 0; t < T; ++t)
          for (int i = 0; i <= t; ++i) {
            const double a = (1 - alpha) * q.row(t).dot(k.row(i)) + alpha * q2.row(t).dot(x.row(i));
            next.row(t) +=
                a * ((1 - alpha) * v.row(i) * wo.middleRows(h * K, K) + alpha * v2.row(i));
          }
      }
      x = next.cwiseMax(-1.5).cwiseMin(1.5);
    }
    for (int t = 0; t < T; ++t)
      for (int e = 0; e < E; ++e)
        EXPECT_NEAR(out[(size_t(b) * T + t) * E + e], x(t, e), 1e-12) << b << " " << t << " " << e;
  }
}

TEST(Interpolation, RejectsBadAlphaAndMismatchedModels) {
  const Fixture f;
  EXPECT_THROW(f.mixed_params(1.5), Error);
  EXPECT_THROW(f.mixed_params(-0.1), Error);
  EXPECT_THROW(interpolated_params(f.trained, f.trained_params.data(), f.revalg,
                                   f.revalg_params.data(), f.revalg, 0.5),
               Error);
}

TEST(Interpolation, ReplayReproducesTheRecordedRunAndJsonRoundTrips) {
  const std::filesystem::path dir = testing::make_temp_dir("mesalab_interp_");
  ASSERT_FALSE(dir.empty());
  const RunConfig cfg = make_run_config(
      nullptr, {"data.dim=2", "data.seq_len=6", "model.embed_dim=8", "model.heads=2",
                "model.key_size=3", "train.steps=30", "train.eval_every=10",
                "train.checkpoint_every=30", "train.batch_size=8", "train.test_batches=1",
                "train.test_batch_size=8", "optim.warmup_steps=5", "optim.decay_steps=30"});
  TrainOptions quiet;
  quiet.progress = false;
  std::vector<std::pair<int64_t, double>> recorded;
  quiet.on_evaluation = [&](int64_t step, const std::vector<float>&, double loss) {
    recorded.push_back({step, loss});
  };
  train(cfg, dir / "run", quiet);
  ASSERT_EQ(recorded.size(), 4u) << "steps 0, 10, 20 and the final 30";
  const Transformer model(cfg.model);
  const TrainState state = load_checkpoint(dir / "run" / "ckpt" / "latest.safetensors", model);
  const InterpolationResult r =
      interpolate_run(cfg, state.params, recorded, dir / "scratch", 0.5, false);
  ASSERT_EQ(r.points.size(), 4u);
  EXPECT_EQ(r.replay_max_difference, 0.0);
  for (size_t i = 0; i < r.points.size(); ++i) {
    EXPECT_EQ(r.points[i].step, recorded[i].first);
    EXPECT_EQ(r.points[i].model, recorded[i].second);
    EXPECT_TRUE(std::isfinite(r.points[i].interpolated));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "scratch")) << "the replay's directory is removed";
  const InterpolationResult back = interpolation_from_json(interpolation_json(r));
  ASSERT_EQ(back.points.size(), r.points.size());
  EXPECT_EQ(back.points[2].interpolated, r.points[2].interpolated);
  EXPECT_EQ(back.revalg_d, r.revalg_d);
  EXPECT_THROW(interpolation_from_json(nlohmann::json{{"alpha", 0.5}}), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mesalab
