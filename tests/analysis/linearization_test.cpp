// Linearization: the linear student's hand-written gradient against central finite
// differences (double), the student with a linear layer's own weights reproduces that layer,
// a student fitted to a layer that is linear attention becomes exact and splices in at
// ratio 1, the fit is bit-identical for 1 and 2 threads, and bad input is an error.
#include "analysis/linearization.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <utility>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

// A raw-token model whose first layer is linear attention with positional codes in its
// queries and keys and whose second is softmax: the student of layer 0 has a positional part.
RunConfig tiny_hybrid_config() {
  return make_run_config(
      nullptr,
      {"data.tokens=raw", "data.dim=3", "data.seq_len=8", "model.layers=2",
       "model.layer=[\"lsa\",\"softmax\"]", "model.embed_dim=8", "model.heads=2",
       "model.key_size=4", "model.positional_codes_qk=true", "model.init_std=0.3",
       "model.clip_act=0", "train.test_batches=2", "train.test_batch_size=32", "train.seed=5"});
}

TEST(Linearization, StudentGradientMatchesFiniteDifferences) {
  constexpr int kB = 10, kT = 5, kE = 6;  // two chunks: 8 + 2 sequences
  testing::ThreadCountGuard threads;      // ~500 tiny evaluations: fork/join would dominate
  omp_set_num_threads(1);
  for (const bool positions : {false, true}) {
    SCOPED_TRACE(positions ? "with positional part" : "without positional part");
    const LinearStudent student({kE, 2, 3, positions});
    std::vector<double> params(student.num_params());
    student.init_params(params.data(), 0.5, 7, 0);
    const std::vector<double> inputs = testing::random_vector(size_t(kB) * kT * kE, 1);
    const std::vector<double> targets = testing::random_vector(size_t(kB) * kT * kE, 2);
    StudentRunner<double> runner(student, kB, kT);
    std::vector<double> grads(student.num_params());
    runner.loss_and_grad(params.data(), inputs.data(), targets.data(), grads.data());
    const std::vector<double> fd = testing::finite_differences(params, [&] {
      return runner.loss_and_grad(params.data(), inputs.data(), targets.data(), nullptr);
    });
    EXPECT_LT(testing::rel_error(grads, fd), 1e-6);
    EXPECT_LT(testing::max_rel_error(grads, fd), 1e-6);
    for (const ParamSpec& spec : student.layout().specs()) {
      double norm = 0.0;
      for (size_t i = 0; i < spec.size; ++i) norm += std::abs(fd[spec.offset + i]);
      EXPECT_GT(norm, 1e-3) << spec.name << " gets no gradient: the check would be empty";
    }
  }
}

TEST(Linearization, StudentWithTheLayersWeightsReproducesTheLayer) {
  const RunConfig cfg = tiny_hybrid_config();
  const Transformer model(cfg.model);
  std::vector<double> params(model.num_params());
  model.init_params(params.data(), 3);
  constexpr int kB = 6;
  const int T = cfg.data.seq_len, E = cfg.model.embed_dim, HK = 8;
  const std::vector<double> tokens = testing::random_vector(size_t(kB) * T * 3, 4);
  Workspace<double> ws = model.make_workspace<double>(kB, T, /*forward_only=*/true);
  model.forward(params.data(), tokens.data(), kB, ws);
  const LayerView<const double> a = std::as_const(ws).layer(0);
  std::vector<double> inputs(a.attn_in, a.attn_in + size_t(kB) * T * E);
  std::vector<double> targets(inputs.size());
  mat(targets.data(), kB * T, E).noalias() =
      mat(a.mixed, kB * T, HK) * mat(params.data() + model.layer(0).o, HK, E);
  const LinearStudent student(student_config_of(cfg.model, 0));
  ASSERT_TRUE(student.config().positions);
  std::vector<double> s(student.num_params());
  student.read_from(model, 0, params.data(), s.data());
  StudentRunner<double> runner(student, kB, T);
  double target_sq = 0.0;
  for (double y : targets) target_sq += y * y;
  ASSERT_GT(target_sq, 1e-2);
  EXPECT_LT(runner.loss_and_grad(s.data(), inputs.data(), targets.data(), nullptr),
            1e-26 * target_sq);
}

TEST(Linearization, AStudentOfALinearLayerIsExactAndSplicesInAtRatioOne) {
  // One thread: on batches this small OpenMP's fork and join per step cost more than the
  // work (5x on a busy machine); the result does not depend on the thread count.
  testing::ThreadCountGuard threads;
  omp_set_num_threads(1);
  const RunConfig cfg = tiny_hybrid_config();
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 3);
  LinearizeOptions options;
  options.layers = {0, 1};
  options.steps = 3000;
  options.lr = 5e-3;
  options.seed = 9;
  const LinearizationResult r = linearize(model, params, cfg, options);
  ASSERT_EQ(r.layers.size(), 2u);
  const LayerLinearization& linear = r.layers[0];
  EXPECT_EQ(linear.kind, MixerKind::Linear);
  EXPECT_GT(linear.zero_loss, 1e-2);
  // The student can represent the layer exactly: its held-out loss falls below 1e-3 of the
  // zero student's (the target's mean square / 2; measured 3e-5), and the spliced model is
  // the original (ratio measured 0.9985).
  EXPECT_LT(linear.relative_fit_loss(), 1e-3);
  EXPECT_NEAR(linear.ratio, 1.0, 0.01);
  EXPECT_GT(r.original_test_loss, 0.0);
  EXPECT_EQ(linear.fit_curve.size(), size_t(options.steps / options.record_every));
  // The softmax layer is fitted and reported too (how well is the experiment's question).
  EXPECT_EQ(r.layers[1].kind, MixerKind::Softmax);
  EXPECT_TRUE(std::isfinite(r.layers[1].ratio));
  EXPECT_LT(r.layers[1].relative_fit_loss(), 1.0);
  // The default choice is every softmax layer.
  EXPECT_EQ(layers_to_linearize(cfg.model, {}), std::vector<int>{1});
}

TEST(Linearization, ResultDoesNotDependOnTheThreadCount) {
  const RunConfig cfg = tiny_hybrid_config();
  const Transformer model(cfg.model);
  std::vector<float> params(model.num_params());
  model.init_params(params.data(), 3);
  LinearizeOptions options;
  options.layers = {1, 0};
  options.steps = 20;
  options.batch = 20;  // chunks of 8, 8 and 4 sequences
  testing::ThreadCountGuard threads;
  std::vector<LinearizationResult> results;
  for (int n : {1, 2}) {
    omp_set_num_threads(n);
    results.push_back(linearize(model, params, cfg, options));
  }
  for (size_t i = 0; i < 2; ++i) {
    const LayerLinearization &a = results[0].layers[i], &b = results[1].layers[i];
    EXPECT_EQ(a.layer, options.layers[i]);
    EXPECT_EQ(a.student, b.student) << "layer " << a.layer;
    EXPECT_EQ(a.fit_curve, b.fit_curve) << "layer " << a.layer;
    EXPECT_EQ(a.ratio, b.ratio) << "layer " << a.layer;
  }
}

TEST(Linearization, BadInputIsAnError) {
  const RunConfig cfg = tiny_hybrid_config();
  EXPECT_THROW(layers_to_linearize(cfg.model, {2}), Error);
  EXPECT_THROW(layers_to_linearize(cfg.model, {1, 1}), Error);
  const RunConfig lsa = make_run_config(nullptr, {"model.layers=2"});
  try {
    layers_to_linearize(lsa.model, {});
    FAIL() << "a model without softmax layers was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no softmax layer"), std::string::npos) << e.what();
    EXPECT_EQ(e.exit_code(), 2);
  }
  // A student without the positional part does not fit layer 0 of a positional_codes_qk model.
  const Transformer model(cfg.model);
  const LinearStudent plain({8, 2, 4, false});
  std::vector<float> s(plain.num_params()), params(model.num_params());
  EXPECT_THROW(plain.write_into(model, 0, s.data(), params.data()), Error);
  EXPECT_NO_THROW(plain.write_into(model, 1, s.data(), params.data()));
  LinearizeOptions options;
  options.batch = 0;
  EXPECT_THROW(linearize(model, params, cfg, options), Error);
}

}  // namespace
}  // namespace mesalab
