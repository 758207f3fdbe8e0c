// Pins the exact semantics (layouts, clipping, loss normalisation) against the
// independent float64 reference in tests/fixtures/reference_grads.json. Its mesa weights and
// gradients are in the official layout (model/official_layout.hpp) and are converted.
#include <gtest/gtest.h>

#include "model/official_layout.hpp"
#include "model/transformer.hpp"
#include "test_util.hpp"

namespace mesalab {
namespace {

struct CaseResult {
  std::vector<double> params, grads, grad_tokens, out;
  double loss = 0;
  Workspace<double> ws;
};

ModelConfig config_of(const nlohmann::json& c) {
  ModelConfig cfg;
  cfg.data_dim = c["data_dim"];
  cfg.embed_dim = c["embed_dim"];
  cfg.heads = c["num_heads"];
  cfg.key_size = c["key_size"];
  cfg.clip_act = c["clip_val"];
  cfg.mixers.assign(c["num_layers"].get<int>(), parse_mixer(c["kind"].get<std::string>()));
  return cfg;
}

CaseResult run_case(const nlohmann::json& c, const Transformer& model) {
  const int B = c["batch"], T = c["seq_len"];
  CaseResult r;
  r.params.assign(model.num_params(), 0.0);
  for (const auto& spec : model.layout().specs()) {
    const auto values = testing::flatten(c["params"][spec.name]);
    EXPECT_EQ(values.size(), spec.size) << spec.name;
    if (values.size() != spec.size) return r;
    std::copy(values.begin(), values.end(), r.params.begin() + spec.offset);
  }
  mesa_params_from_official(model, r.params.data());
  const auto x = testing::flatten(c["x"]);
  const auto labels = testing::flatten(c["labels"]);
  r.grads.assign(model.num_params(), 0.0);
  r.grad_tokens.assign(x.size(), 0.0);
  r.ws = model.make_workspace<double>(B, T);
  const double sq = testing::forward_backward<double>(model, r.params.data(), x.data(),
                                                      labels.data(), B, r.ws, r.grads.data(),
                                                      1.0 / (B * T), nullptr, r.grad_tokens.data());
  r.loss = sq / (2.0 * B * T);
  return r;
}

void check_case(const std::string& name) {
  const auto& c = testing::reference_fixture()["cases"][name];
  const Transformer model(config_of(c));
  const CaseResult r = run_case(c, model);
  const int L = model.config().layers();
  const size_t NE =
      size_t(c["batch"].get<int>()) * c["seq_len"].get<int>() * model.config().embed_dim;

  EXPECT_NEAR(r.loss, c["loss"].get<double>(), 1e-10 * std::abs(c["loss"].get<double>()));
  const auto acts = testing::flatten(c["acts"]);
  const auto attn = testing::flatten(c["attn_out"]);
  for (int l = 0; l <= L; ++l) {
    SCOPED_TRACE("activation after layer " + std::to_string(l));
    const double* x = l < L ? r.ws.layer(l).input : r.ws.layer(L - 1).output;
    EXPECT_ALL_CLOSE(x, acts.data() + l * NE, NE, 1e-10);
  }
  for (int l = 0; l < L; ++l) {
    SCOPED_TRACE("attention output of layer " + std::to_string(l));
    const LayerView<const double> a = r.ws.layer(l);
    std::vector<double> layer_out(NE);
    for (size_t i = 0; i < NE; ++i) layer_out[i] = a.pre_clip[i] - a.input[i];
    EXPECT_ALL_CLOSE(layer_out.data(), attn.data() + l * NE, NE, 1e-9);
  }
  std::vector<double> expected(model.num_params());
  for (const auto& spec : model.layout().specs()) {
    const auto values = testing::flatten(c["grads"][spec.name]);
    ASSERT_EQ(values.size(), spec.size) << spec.name;
    std::copy(values.begin(), values.end(), expected.begin() + spec.offset);
  }
  mesa_params_from_official(model, expected.data());
  for (const auto& spec : model.layout().specs()) {
    SCOPED_TRACE("gradient of " + spec.name);
    EXPECT_ALL_CLOSE(r.grads.data() + spec.offset, expected.data() + spec.offset, spec.size, 1e-9);
  }
  const auto grad_x = testing::flatten(c["grad_x"]);
  EXPECT_ALL_CLOSE(r.grad_tokens.data(), grad_x.data(), grad_x.size(), 1e-9);
}

TEST(ReferenceParity, LinearAttentionTwoLayers) { check_case("lsa_2layer"); }
TEST(ReferenceParity, SoftmaxAttentionOneLayer) { check_case("softmax_1layer"); }
TEST(ReferenceParity, MesaOneLayer) { check_case("mesa_1layer"); }

}  // namespace
}  // namespace mesalab
