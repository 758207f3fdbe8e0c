#include "analysis/probes.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "model/batch_runner.hpp"
#include "train/evaluation.hpp"
#include "train/optimizer.hpp"
#include "train/run_config.hpp"

namespace mesalab {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRows = Eigen::Map<const RowMatrix>;

// (rows, cols) row-major standard normals from the stream (seed, Probe, tag).
RowMatrix random_matrix(int rows, int cols, uint64_t seed, uint64_t tag) {
  Rng rng{seed, uint64_t(RngPurpose::Probe), tag};
  RowMatrix m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = rng.normal();
  return m;
}

double sse(const RowMatrix& a, const RowMatrix& p, const RowMatrix& y) {
  return (a * p - y).squaredNorm();
}

// Constructed tokens, D = 10, E = 40, 2 LSA layers (the defaults) with T = 20.
RunConfig probe_config(std::vector<std::string> extra = {}) {
  std::vector<std::string> sets = {"data.seq_len=20"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return make_run_config(nullptr, sets);
}

TEST(Probes, FullRankFitMatchesNormalEquations) {
  constexpr int kRows = 64, kIn = 8, kOut = 3;
  const RowMatrix a = random_matrix(kRows, kIn, 1, 0);
  const RowMatrix y = random_matrix(kRows, kOut, 1, 1);
  const std::vector<double> p = least_squares_probe(a.data(), y.data(), kRows, kIn, kOut);
  // Independent solve: P = (A^T A)^{-1} A^T Y by LDLT of the normal matrix.
  const Eigen::MatrixXd ata = a.transpose() * a;
  const Eigen::MatrixXd expected = ata.ldlt().solve(a.transpose() * y);
  ASSERT_EQ(p.size(), size_t(kIn * kOut));
  const ConstRows got(p.data(), kIn, kOut);
  EXPECT_LT((got - expected).cwiseAbs().maxCoeff(), 1e-9);
  const ProbeFit fit = fit_probe(a.data(), y.data(), kRows, kIn, kOut);
  EXPECT_NEAR(fit.loss, sse(a, got, y) / (2.0 * kRows), 1e-12);
  EXPECT_EQ(fit.kept, kRows);
  const double sst = (y.rowwise() - y.colwise().mean()).squaredNorm();
  EXPECT_NEAR(fit.r2, 1.0 - sse(a, got, y) / sst, 1e-12);
  EXPECT_LT(fit.r2, 0.5);  // Y is independent noise: little to explain
}

TEST(Probes, RankDeficientFitIsMinimumNorm) {
  // Columns 0, 1 are zero (as the first D channels of constructed tokens), column 5 duplicates
  // column 4 (as the two s_t slots of a token).
  constexpr int kRows = 64, kIn = 8, kOut = 3;
  RowMatrix a = random_matrix(kRows, kIn, 2, 0);
  a.col(0).setZero();
  a.col(1).setZero();
  a.col(5) = a.col(4);
  const RowMatrix y = random_matrix(kRows, kOut, 2, 1) + a * random_matrix(kIn, kOut, 2, 2);
  const std::vector<double> p_flat = least_squares_probe(a.data(), y.data(), kRows, kIn, kOut);
  const ConstRows p(p_flat.data(), kIn, kOut);
  // Independent fit on the distinct non-zero columns 2, 3, 4, 6, 7 by normal equations.
  RowMatrix reduced(kRows, 5);
  reduced << a.col(2), a.col(3), a.col(4), a.col(6), a.col(7);
  const Eigen::MatrixXd q = (reduced.transpose() * reduced).ldlt().solve(reduced.transpose() * y);
  const double expected_loss = sse(reduced, q, y) / (2.0 * kRows);
  const ProbeFit fit = fit_probe(a.data(), y.data(), kRows, kIn, kOut);
  EXPECT_NEAR(fit.loss, expected_loss, 1e-10);
  EXPECT_GT(fit.r2, 0.5);
  // Minimum norm: no weight on zero columns, the duplicated column's weight split evenly.
  EXPECT_EQ(p.row(0).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_EQ(p.row(1).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_LT((p.row(4) - 0.5 * q.row(2)).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LT((p.row(5) - 0.5 * q.row(2)).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(Probes, InverseTargetsMatchDenseInverse) {
  DataConfig data;
  data.seq_len = 12;
  data.dim = 4;
  constexpr int kB = 5;
  constexpr double kLambda = 1e-3;
  const std::vector<double> states = sample_states(data, 3, RngPurpose::Probe, 0, kB);
  const std::vector<double> y =
      preconditioned_inputs(states.data(), kB, data.seq_len, data.dim, kLambda);
  ASSERT_EQ(y.size(), size_t(data.seq_len) * kB * data.dim);
  for (int b = 0; b < kB; ++b) {
    const ConstRows seq(states.data() + size_t(b) * (data.seq_len + 1) * data.dim, data.seq_len + 1,
                        data.dim);
    for (int t = 0; t < data.seq_len; ++t) {
      Eigen::MatrixXd m = kLambda * Eigen::MatrixXd::Identity(data.dim, data.dim);
      for (int i = 0; i < t; ++i) m += seq.row(i).transpose() * seq.row(i);
      const Eigen::VectorXd expected = m.inverse() * seq.row(t).transpose();
      const Eigen::Map<const Eigen::VectorXd> got(y.data() + (size_t(t) * kB + b) * data.dim,
                                                  data.dim);
      EXPECT_LE((got - expected).norm(), 1e-9 * expected.norm()) << "b " << b << " t " << t;
    }
  }
  // t = 0: the sum is empty and y = u_0 / lambda.
  EXPECT_DOUBLE_EQ(y[0], states[0] / kLambda);
}

TEST(Probes, OutlierMaskUsesPopulationZScores) {
  // Norms 1, 1, 1, 1, 10: mean 2.8, population std 3.6, so z = -0.5 four times and 2.0.
  const std::vector<double> y = {1, 0, 0, -1, 0.6, 0.8, 1, 0, 6, 8};
  EXPECT_EQ(outlier_keep_mask(y.data(), 5, 2, 1.9), (std::vector<char>{1, 1, 1, 1, 0}));
  EXPECT_EQ(outlier_keep_mask(y.data(), 5, 2, 2.1), (std::vector<char>(5, 1)));
  EXPECT_EQ(outlier_keep_mask(y.data(), 5, 2, std::numeric_limits<double>::infinity()),
            (std::vector<char>(5, 1)));
  // Identical norms: std = 0, nothing is an outlier.
  const std::vector<double> flat = {1, 0, 0, 1, -1, 0};
  EXPECT_EQ(outlier_keep_mask(flat.data(), 3, 2, 0.5), (std::vector<char>(3, 1)));
  // The fit uses only the kept rows.
  const RowMatrix a = random_matrix(5, 1, 4, 0);
  const std::vector<char> keep = outlier_keep_mask(y.data(), 5, 2, 1.9);
  const ProbeFit with_mask = fit_probe(a.data(), y.data(), 5, 1, 2, &keep);
  const ProbeFit first_four = fit_probe(a.data(), y.data(), 4, 1, 2);
  EXPECT_EQ(with_mask.kept, 4);
  EXPECT_DOUBLE_EQ(with_mask.loss, first_four.loss);
}

TEST(Probes, ActivationsAndSemanticsOnConstructedTokens) {
  // Untrained model (init_std 2e-4): layer 0 is the token [0, s_t, s_t, s_{t-1}], so s_t is a
  // linear function of it and the Current probe is exact up to the float rounding of the
  // tokens, while s_{t+1} = W s_t + noise with a W of its own per sequence is not.
  const RunConfig cfg = probe_config();
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 7);
  const TokenBatch batch = make_token_batch(cfg, 5, RngPurpose::Probe, 0, 100);  // 100 > E = 40
  const LayerActivations acts = collect_activations(model, params.data(), batch);
  const int T = cfg.data.seq_len, E = cfg.model.embed_dim, L = cfg.model.layers();
  ASSERT_EQ(acts.values.size(), size_t(L + 1) * T * 100 * E);
  for (int b : {0, 7, 8, 99})  // first and last sequence of chunks
    for (int t : {0, 13, T - 1})
      for (int e : {0, 10, 39})
        EXPECT_EQ(acts.at(0, t)[size_t(b) * E + e], batch.tokens[(size_t(b) * T + t) * E + e]);

  const ProbeOptions options;
  const ProbeResult current = run_probe(acts, batch, ProbeTarget::Current, options);
  const ProbeResult next = run_probe(acts, batch, ProbeTarget::Next, options);
  ASSERT_EQ(current.loss.size(), size_t(T) * (L + 1));
  for (int t = 0; t < T; ++t) {
    EXPECT_LT(current.loss_at(t, 0), 1e-10) << "t " << t;
    EXPECT_GT(current.r2_at(t, 0), 1.0 - 1e-10) << "t " << t;
    EXPECT_EQ(current.kept[size_t(t)], 100);
    if (t >= 2) {
      EXPECT_GT(next.loss_at(t, 0), 100.0 * current.loss_at(t, 0)) << "t " << t;
    }
  }
  EXPECT_GT(next.loss_at(T - 1, 0), 0.1);
}

TEST(Probes, EmbeddingModelsAreProbedOnTheEmbeddedStream) {
  // Raw tokens o_t with a learned embedding: layer 0 is x_0 = o_t Win (E = 40 wide), still an
  // exact linear function of the current observation.
  const RunConfig cfg = probe_config({"data.tokens=raw", "model.init_std=0.1"});
  ASSERT_TRUE(cfg.model.embedding());
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 23);
  const TokenBatch batch = make_token_batch(cfg, 23, RngPurpose::Probe, 0, 64);
  const LayerActivations acts = collect_activations(model, params.data(), batch);
  EXPECT_EQ(acts.width, cfg.model.embed_dim);
  const ProbeResult current = run_probe(acts, batch, ProbeTarget::Current, {});
  for (int t = 0; t < cfg.data.seq_len; ++t) EXPECT_LT(current.loss_at(t, 0), 1e-10) << "t " << t;
}

TEST(Probes, TrainingMakesTheNextStateLinearlyDecodable) {
  // 80 steps of batch 16 at lr 3e-3 (a shorter Trainer.ShortRunLearnsWellBelowTheZeroPredictor):
  // the last layer's stream then holds a prediction of s_{t+1}, so late in the sequence the
  // Next probe must do much better there than on the input.
  constexpr int kSteps = 80, kBatch = 16;
  constexpr uint64_t kSeed = 11;
  const RunConfig cfg =
      probe_config({"optim.warmup_steps=10", "optim.decay_steps=80", "optim.lr=0.003"});
  const Transformer model(cfg.model);
  const int T = cfg.data.seq_len, L = cfg.model.layers();
  std::vector<float> params(model.num_params()), grads(params.size());
  std::vector<float> m(params.size(), 0.f), v(params.size(), 0.f);
  model.init_params(params.data(), kSeed);
  BatchRunner<float> runner(model, kBatch, T);
  for (int step = 0; step < kSteps; ++step) {
    const TokenBatch b =
        make_token_batch(cfg, kSeed, RngPurpose::TrainData, uint64_t(step), kBatch);
    runner.loss_and_grad(params.data(), b.tokens.data(), b.labels.data(), grads.data());
    adamw_step(cfg.optim, step, params.data(), grads.data(), m.data(), v.data(), params.size());
  }
  const TokenBatch batch = make_token_batch(cfg, kSeed, RngPurpose::Probe, 0, 256);
  const LayerActivations acts = collect_activations(model, params.data(), batch);
  const ProbeResult next = run_probe(acts, batch, ProbeTarget::Next, ProbeOptions{});
  double input = 0.0, output = 0.0;
  for (int t = T / 2; t < T; ++t) {
    input += next.loss_at(t, 0);
    output += next.loss_at(t, L);
  }
  std::printf("Next probe, mean over t >= T/2: input %.4f, last layer %.4f\n", input / (T - T / 2),
              output / (T - T / 2));
  EXPECT_LT(output, 0.7 * input);
}

TEST(Probes, ControlMatchesDirectRegression) {
  const RunConfig cfg = probe_config();
  const TokenBatch batch = make_token_batch(cfg, 9, RngPurpose::Probe, 0, 64);
  ProbeOptions options;
  options.lambda = 0.1;
  const ControlResult control = control_probe(batch, options);
  const int T = cfg.data.seq_len, D = cfg.data.dim;
  ASSERT_EQ(control.loss.size(), size_t(T));
  // Independent: p_b = dense inverse applied to u_t, then normal equations for s_{t+1} ~ p.
  for (int t : {3, T - 1}) {
    RowMatrix p(64, D), y(64, D);
    for (int b = 0; b < 64; ++b) {
      const ConstRows seq(batch.states.data() + size_t(b) * (T + 1) * D, T + 1, D);
      Eigen::MatrixXd g = options.lambda * Eigen::MatrixXd::Identity(D, D);
      for (int i = 0; i < t; ++i) g += seq.row(i).transpose() * seq.row(i);
      p.row(b) = (g.inverse() * seq.row(t).transpose()).transpose();
      y.row(b) = seq.row(t + 1);
    }
    const Eigen::MatrixXd w = (p.transpose() * p).ldlt().solve(p.transpose() * y);
    const double expected = sse(p, w, y) / (2.0 * 64);
    EXPECT_NEAR(control.loss[size_t(t)], expected, 1e-9 * expected) << "t " << t;
    EXPECT_EQ(control.kept[size_t(t)], 64);
  }
}

TEST(Probes, ResultsDoNotDependOnThreadCount) {
  // A random model with large weights, so that every layer changes the stream.
  const RunConfig cfg = probe_config({"model.init_std=0.05"});
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 13);
  const TokenBatch batch = make_token_batch(cfg, 13, RngPurpose::Probe, 0, 60);
  ProbeOptions options;
  options.outlier_z = 2.0;
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    const LayerActivations acts = collect_activations(model, params.data(), batch);
    std::vector<double> all = acts.values;
    for (ProbeTarget target :
         {ProbeTarget::Current, ProbeTarget::Next, ProbeTarget::InverseCurrent}) {
      const ProbeResult r = run_probe(acts, batch, target, options);
      all.insert(all.end(), r.loss.begin(), r.loss.end());
      all.insert(all.end(), r.r2.begin(), r.r2.end());
      all.insert(all.end(), r.kept.begin(), r.kept.end());
    }
    const ControlResult c = control_probe(batch, options);
    all.insert(all.end(), c.loss.begin(), c.loss.end());
    all.insert(all.end(), c.kept.begin(), c.kept.end());
    return all;
  };
  const std::vector<double> one = run(1), two = run(2);
  omp_set_num_threads(omp_get_num_procs());
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(one[i], two[i]) << "index " << i;
  // The layers did change the stream, and the z filter did drop samples somewhere.
  const size_t block = size_t(cfg.data.seq_len) * 60 * cfg.model.embed_dim;
  EXPECT_NE(one[10], one[2 * block + 10]);
  const ControlResult c = control_probe(batch, options);
  EXPECT_LT(*std::min_element(c.kept.begin(), c.kept.end()), 60);
}

TEST(Probes, CsvAndJsonHaveOneEntryPerLayerAndStep) {
  const RunConfig cfg = probe_config({"data.seq_len=6"});
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 17);
  const TokenBatch batch = make_token_batch(cfg, 17, RngPurpose::Probe, 0, 48);
  const LayerActivations acts = collect_activations(model, params.data(), batch);
  const std::vector<ProbeResult> results = {
      run_probe(acts, batch, ProbeTarget::Current, {}),
      run_probe(acts, batch, ProbeTarget::InverseCurrent, {})};
  const ControlResult control = control_probe(batch, {});
  const std::string csv = probes_csv(results, &control);
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "target,layer,t,loss,r2");
  int rows = 0;
  while (std::getline(lines, line)) ++rows;
  EXPECT_EQ(rows, 2 * 3 * 6 + 6);
  EXPECT_NE(csv.find("\ncurrent,0,1,"), std::string::npos);
  EXPECT_NE(csv.find("\ninverse,2,6,"), std::string::npos);
  EXPECT_NE(csv.find("\ncontrol,,6,"), std::string::npos);

  const nlohmann::json j = probes_json(results, &control);
  EXPECT_EQ(j["seq_len"], 6);
  EXPECT_EQ(j["layers"], 2);
  ASSERT_EQ(j["probes"]["inverse"]["loss"].size(), 6u);
  ASSERT_EQ(j["probes"]["inverse"]["loss"][5].size(), 3u);
  EXPECT_DOUBLE_EQ(j["probes"]["inverse"]["loss"][5][2].get<double>(), results[1].loss_at(5, 2));
  EXPECT_EQ(j["probes"]["current"]["mean_loss"].size(), 3u);
  EXPECT_EQ(j["control"]["loss"].size(), 6u);
}

TEST(Probes, BadInputIsRejected) {
  EXPECT_THROW(parse_probe_target("bogus"), Error);
  EXPECT_EQ(parse_probe_target("inverse"), ProbeTarget::InverseCurrent);
  for (double lambda : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    ProbeOptions o;
    o.lambda = lambda;
    EXPECT_THROW(o.validate(), Error) << lambda;
  }
  ProbeOptions bad_z;
  bad_z.outlier_z = 0.0;
  EXPECT_THROW(bad_z.validate(), Error);

  const RunConfig cfg = probe_config({"data.seq_len=5"});
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 19);
  const TokenBatch batch = make_token_batch(cfg, 19, RngPurpose::Probe, 0, 9);
  const LayerActivations acts = collect_activations(model, params.data(), batch);
  const TokenBatch other = make_token_batch(cfg, 19, RngPurpose::Probe, 0, 10);
  EXPECT_THROW(run_probe(acts, other, ProbeTarget::Next, {}), Error);
  // A model that takes other tokens than the batch holds.
  const RunConfig raw = probe_config({"data.seq_len=5", "data.tokens=raw"});
  const Transformer raw_model(raw.model);
  std::vector<float> raw_params(raw_model.num_params());
  EXPECT_THROW(collect_activations(raw_model, raw_params.data(), batch), Error);
  // Every row masked out.
  const std::vector<char> none(9, 0);
  EXPECT_THROW(fit_probe(acts.at(0, 0), acts.at(0, 0), 9, 40, 40, &none), Error);
  EXPECT_THROW(preconditioned_inputs(batch.states.data(), 9, 5, 10, 0.0), Error);
}

// Held-out probes: the current state is an exact linear function of the input layer, so a
// probe fitted on one batch decodes another batch exactly; where the in-sample fit
// interpolates (16 sequences, tokens [0, s_t, s_t, s_{t-1}] of rank 2D = 20) the held-out
// loss shows it.
TEST(HeldOutProbes, ExactTargetTransfersAndInterpolationDoesNot) {
  const RunConfig cfg = probe_config();
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 3);
  const TokenBatch wide = make_token_batch(cfg, 2, RngPurpose::Probe, 0, 64);
  const TokenBatch fit = make_token_batch(cfg, 1, RngPurpose::Probe, 0, 16);
  const TokenBatch score = make_token_batch(cfg, 11, RngPurpose::Probe, 0, 48);
  const LayerActivations wide_acts = collect_activations(model, params.data(), wide);
  const LayerActivations fit_acts = collect_activations(model, params.data(), fit);
  const LayerActivations score_acts = collect_activations(model, params.data(), score);
  const int T = cfg.data.seq_len;

  const ProbeResult current =
      run_held_out_probe(wide_acts, wide, score_acts, score, ProbeTarget::Current, {});
  for (int t = 0; t < T; ++t) {
    EXPECT_LT(current.loss_at(t, 0), 1e-8) << "t " << t;
    EXPECT_EQ(current.kept[size_t(t)], 48) << "scored on the held-out batch";
  }
  const ProbeResult in_sample = run_probe(fit_acts, fit, ProbeTarget::Next, {});
  const ProbeResult held_out =
      run_held_out_probe(fit_acts, fit, score_acts, score, ProbeTarget::Next, {});
  for (int t = 2; t < T; ++t) {
    EXPECT_LT(in_sample.loss_at(t, 0), 1e-6) << "16 rows, rank 20: in-sample interpolates";
    EXPECT_GT(held_out.loss_at(t, 0), 0.1) << "t " << t;
  }
  // With the same batch on both sides it is the in-sample probe.
  const ProbeResult same = run_held_out_probe(fit_acts, fit, fit_acts, fit, ProbeTarget::Next, {});
  EXPECT_EQ(same.loss, in_sample.loss);
  TokenBatch other = score;
  other.dim = 3;
  EXPECT_THROW(run_held_out_probe(fit_acts, fit, score_acts, other, ProbeTarget::Next, {}), Error);
}

// Direct evaluation for the implicit target: the preconditioned inputs by dense inverse, and
// C_t = sum_{i<t} u_i u_{i+1}^T by explicit loops.
struct ImplicitDirect {
  RowMatrix inverse, cross, next;  // rows b: (D), (D*D), (D)
};
ImplicitDirect implicit_direct(const TokenBatch& batch, int t, double lambda) {
  const int B = batch.batch, T = batch.seq_len, D = batch.dim;
  ImplicitDirect d{RowMatrix(B, D), RowMatrix::Zero(B, D * D), RowMatrix(B, D)};
  for (int b = 0; b < B; ++b) {
    const ConstRows seq(batch.states.data() + size_t(b) * (T + 1) * D, T + 1, D);
    Eigen::MatrixXd g = lambda * Eigen::MatrixXd::Identity(D, D);
    for (int i = 0; i < t; ++i) {
      g += seq.row(i).transpose() * seq.row(i);
      for (int r = 0; r < D; ++r)
        for (int c = 0; c < D; ++c) d.cross(b, r * D + c) += seq(i, r) * seq(i + 1, c);
    }
    d.inverse.row(b) = (g.inverse() * seq.row(t).transpose()).transpose();
    d.next.row(b) = seq.row(t + 1);
  }
  return d;
}

double cross_prediction_mse(const RowMatrix& x, const ImplicitDirect& d, double scale) {
  const int B = int(x.rows()), D = int(x.cols());
  double sse = 0.0;
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < D; ++c) {
      double pred = 0.0;
      for (int r = 0; r < D; ++r) pred += scale * x(b, r) * d.cross(b, r * D + c);
      sse += (pred - d.next(b, c)) * (pred - d.next(b, c));
    }
  return sse / (double(B) * D);
}

TEST(ImplicitProbes, CrossSumsAndTheExactInverseGiveTheDirectMse) {
  const RunConfig cfg = probe_config();
  const TokenBatch batch = make_token_batch(cfg, 4, RngPurpose::Probe, 0, 32);
  const int T = batch.seq_len, B = batch.batch, D = batch.dim;
  const std::vector<double> cross = cross_sums(batch);
  ASSERT_EQ(cross.size(), size_t(T) * B * D * D);
  ProbeOptions options;
  options.lambda = 0.1;
  // Activations that hold the preconditioned input exactly (one "layer", width D): the probe
  // recovers it, so the implicit target's loss is the direct MSE of 0.5 p^T C_t.
  LayerActivations acts;
  acts.batch = B;
  acts.seq_len = T;
  acts.layers = 0;
  acts.width = D;
  acts.values = preconditioned_inputs(batch.states.data(), B, T, D, options.lambda);
  const ProbeResult r = run_probe(acts, batch, ProbeTarget::Implicit, options);
  const ControlResult ref = implicit_reference(batch);
  for (int t : {0, 5, T - 1}) {
    const ImplicitDirect d = implicit_direct(batch, t, options.lambda);
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < D * D; ++k)
        EXPECT_NEAR(cross[(size_t(t) * B + b) * D * D + k], d.cross(b, k), 1e-12);
    const double expected = cross_prediction_mse(d.inverse, d, 0.5);
    EXPECT_NEAR(r.loss_at(t, 0), expected, 1e-8 * expected) << "t " << t;
    RowMatrix u(B, D);
    for (int b = 0; b < B; ++b)
      u.row(b) = ConstRows(batch.states.data() + (size_t(b) * (T + 1) + t) * D, 1, D);
    const double ref_expected = cross_prediction_mse(u, d, 0.45);
    EXPECT_NEAR(ref.loss[size_t(t)], ref_expected, 1e-10 * ref_expected) << "t " << t;
    EXPECT_EQ(ref.kept[size_t(t)], B);
  }
  EXPECT_EQ(parse_probe_target("implicit"), ProbeTarget::Implicit);
}

// The features target is phi(u_t) of the run's own feature map, computed point by point
// here; activations holding [phi(u_t), u_t] decode it exactly (R^2 ~ 1, loss ~ 0) while the
// state alone does not; "all" adds it on nonlinear data only, and linear data refuse it.
TEST(Probes, FeaturesTargetIsTheGeneratorsFeatureMap) {
  const RunConfig cfg = probe_config({"data.kind=nonlinear"});
  const TokenBatch batch = make_token_batch(cfg, 6, RngPurpose::Probe, 0, 64);
  const int T = batch.seq_len, B = batch.batch, D = batch.dim;
  ProbeOptions options;
  options.features = probe_features(cfg.data);
  const std::vector<double> y = probe_targets(ProbeTarget::Features, batch, options);
  LayerActivations acts{B, T, 1, 2 * D, std::vector<double>(size_t(2) * T * B * 2 * D)};
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) {
      const double* u = batch.states.data() + (size_t(b) * (T + 1) + t) * D;
      std::vector<double> phi(D);
      nonlinear_feature_map(options.features, u, nullptr, phi.data());
      for (int d = 0; d < D; ++d) {
        EXPECT_EQ(y[(size_t(t) * B + b) * D + d], phi[d]);
        double* row0 = acts.values.data() + (size_t(t) * B + b) * 2 * D;        // layer 0: [u, 0]
        double* row1 = acts.values.data() + ((size_t(T) + t) * B + b) * 2 * D;  // layer 1
        row0[d] = u[d];
        row1[d] = phi[d];
        row1[D + d] = u[d];
      }
    }
  const ProbeResult r = run_probe(acts, batch, ProbeTarget::Features, options);
  for (int t = 0; t < T; ++t) {
    EXPECT_LT(r.loss_at(t, 1), 1e-20) << "t " << t;
    EXPECT_GT(r.r2_at(t, 1), 1 - 1e-12) << "t " << t;
    EXPECT_LT(r.r2_at(t, 0), 0.99) << "t " << t;
  }
  EXPECT_EQ(parse_probe_targets("all", cfg.data).back(), ProbeTarget::Features);
  EXPECT_EQ(parse_probe_targets("all", DataConfig{}).size(), 3u);
  EXPECT_EQ(parse_probe_targets("features", cfg.data),
            std::vector<ProbeTarget>{ProbeTarget::Features});
  EXPECT_THROW(parse_probe_targets("bogus", cfg.data), Error);
  const TokenBatch linear = make_token_batch(probe_config(), 6, RngPurpose::Probe, 0, 8);
  EXPECT_THROW(probe_targets(ProbeTarget::Features, linear, ProbeOptions{}), Error);
}

TEST(ImplicitProbes, CleanTargetDropsSamplesWithAnEntryAtLeastTwo) {
  const RunConfig cfg = probe_config();
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 3);
  TokenBatch batch = make_token_batch(cfg, 2, RngPurpose::Probe, 0, 64);
  const int T = batch.seq_len, D = batch.dim;
  const int t = 7;
  // s_{t+1} of sequences 0..4 gets one entry >= 2; entry -5 (sequence 5) is kept (one-sided).
  for (int b = 0; b < 5; ++b) batch.states[(size_t(b) * (T + 1) + t + 1) * D + b] = 2.0 + b;
  batch.states[(size_t(5) * (T + 1) + t + 1) * D] = -5.0;
  const LayerActivations acts = collect_activations(model, params.data(), batch);
  ProbeOptions options;
  const ProbeResult plain = run_probe(acts, batch, ProbeTarget::Next, options);
  options.clean_target = true;
  const ProbeResult clean = run_probe(acts, batch, ProbeTarget::Next, options);
  EXPECT_EQ(plain.kept[size_t(t)], 64);
  int expected = 0;
  for (int b = 0; b < 64; ++b) {
    bool keep = true;
    for (int d = 0; d < D; ++d)
      keep = keep && batch.states[(size_t(b) * (T + 1) + t + 1) * D + d] < 2.0;
    expected += keep;
  }
  EXPECT_LE(expected, 59);
  EXPECT_EQ(clean.kept[size_t(t)], expected);
  const ProbeResult current = run_probe(acts, batch, ProbeTarget::Current, options);
  EXPECT_EQ(current.kept[size_t(t)], 64) << "the filter belongs to the next-state target";
}

}  // namespace
}  // namespace mesalab
