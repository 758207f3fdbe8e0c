// The config schema and make_run_config: the defaults are the paper's setting, --set and
// file values override them with the right types, and every bad input is a mesalab::Error
// (exit code 2) whose message names the offending key.
#include "io/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "train/run_config.hpp"

namespace mesalab {
namespace {

using nlohmann::json;
using Sets = std::vector<std::string>;

// The message of the Error thrown by `f`, or "" (with a test failure) if none is thrown.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2) << "bad input must exit with 2: " << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected mesalab::Error, got another exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected mesalab::Error, nothing was thrown";
  return "";
}

std::string set_error(const Sets& sets) {
  return error_of([&] { make_run_config(json(), sets); });
}

std::string file_error(const json& file) {
  return error_of([&] { make_run_config(file, {}); });
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected the message to contain '" << (needle) << "', got: " << (haystack)

// ---------------------------------------------------------------------------------------
// Defaults.

TEST(RunConfigDefaults, AreThePapersSetting) {
  const RunConfig c = make_run_config(json(), {});
  // Model: 2 LSA layers, H = 4, K = 20, E = 40 = 4 D, clip 1.5, init N(0, (2e-4)^2).
  EXPECT_EQ(c.model.layers(), 2);
  EXPECT_EQ(c.model.mixers, (std::vector<MixerKind>{MixerKind::Linear, MixerKind::Linear}));
  EXPECT_EQ(c.model.heads, 4);
  EXPECT_EQ(c.model.key_size, 20);
  EXPECT_EQ(c.model.embed_dim, 40);
  EXPECT_EQ(c.model.data_dim, 10);
  EXPECT_DOUBLE_EQ(c.model.clip_act, 1.5);
  EXPECT_DOUBLE_EQ(c.model.init_std, 2e-4);
  // Data: D = 10, T = 50.
  EXPECT_EQ(c.data.dim, 10);
  EXPECT_EQ(c.data.seq_len, 50);
  // Optimizer: AdamW, warmup-cosine 0 -> 3e-4 (1000 steps) -> 1e-5 at 20000, wd 0.05,
  // element-wise gradient clipping 1.0.
  EXPECT_DOUBLE_EQ(c.optim.peak_lr, 3e-4);
  EXPECT_DOUBLE_EQ(c.optim.init_lr, 0.0);
  EXPECT_EQ(c.optim.warmup_steps, 1000);
  EXPECT_EQ(c.optim.decay_steps, 20000);
  EXPECT_DOUBLE_EQ(c.optim.end_lr, 1e-5);
  EXPECT_TRUE(c.optim.use_schedule);
  EXPECT_DOUBLE_EQ(c.optim.weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(c.optim.grad_clip, 1.0);
  // Training: batch 256.
  EXPECT_EQ(c.train.batch_size, 256);
  EXPECT_EQ(c.train.inject_nan_at_step, -1);
  // The resolved config has every default filled in, embed_dim made explicit.
  EXPECT_EQ(c.resolved["model"]["embed_dim"], 40);
  EXPECT_EQ(c.resolved["model"]["layer"], "lsa");
  EXPECT_EQ(c.resolved["optim"]["lr"], 3e-4);
  EXPECT_EQ(c.resolved["train"]["batch_size"], 256);
}

TEST(RunConfigDefaults, ResolvedConfigRoundTrips) {
  // config.json of a run holds `resolved`; reading it back must give the same config.
  const RunConfig a = make_run_config(json(), {"model.layers=3", "model.layer=softmax"});
  const RunConfig b = make_run_config(json::parse(a.resolved.dump()), {});
  EXPECT_EQ(a.resolved, b.resolved);
  EXPECT_EQ(b.model.mixers, std::vector<MixerKind>(3, MixerKind::Softmax));
}

TEST(ConfigSchema, EveryKeyIsDocumentedAndUnique) {
  const auto& keys = run_config_schema().keys();
  std::set<std::string> seen;
  for (const auto& k : keys) {
    EXPECT_TRUE(seen.insert(k.key).second) << "duplicate key " << k.key;
    EXPECT_FALSE(k.help.empty()) << k.key;
  }
  const std::string listing = run_config_schema().describe();
  for (const char* key : {"model.layers", "model.layer", "optim.lr", "train.batch_size",
                          "train.runs_dir", "debug.inject_nan_at_step"})
    EXPECT_CONTAINS(listing, key);
  EXPECT_CONTAINS(listing, "range [0, inf]");  // ranges are shown
}

// ---------------------------------------------------------------------------------------
// Overrides.

TEST(RunConfigOverrides, TypedValues) {
  const RunConfig c = make_run_config(
      json(), {"model.heads=2", "optim.lr=1e-3", "optim.use_schedule=false", "name=my_run",
               "train.runs_dir=/tmp/some where", "model.clip_act=0", "train.steps=7"});
  EXPECT_EQ(c.model.heads, 2);                     // int
  EXPECT_DOUBLE_EQ(c.optim.peak_lr, 1e-3);         // float
  EXPECT_FALSE(c.optim.use_schedule);              // bool
  EXPECT_EQ(c.name, "my_run");                     // bare string (not JSON)
  EXPECT_EQ(c.train.runs_dir, "/tmp/some where");  // string with '/' and a space
  EXPECT_DOUBLE_EQ(c.model.clip_act, 0.0);         // an integer literal for a float key
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.resolved["optim"]["use_schedule"], false);
}

TEST(RunConfigOverrides, QuotedJsonString) {
  const RunConfig c = make_run_config(json(), {R"(name="quoted")", "model.layer=\"softmax\""});
  EXPECT_EQ(c.name, "quoted");
  EXPECT_EQ(c.model.mixers, std::vector<MixerKind>(2, MixerKind::Softmax));
}

TEST(RunConfigOverrides, LayerList) {
  const RunConfig c =
      make_run_config(json(), {R"(model.layer=["softmax","mesa"])", "model.layers=2"});
  EXPECT_EQ(c.model.mixers, (std::vector<MixerKind>{MixerKind::Softmax, MixerKind::Mesa}));
  EXPECT_EQ(c.resolved["model"]["layer"], json::parse(R"(["softmax","mesa"])"));
}

TEST(RunConfigOverrides, SingleKindIsRepeatedForEveryLayer) {
  const RunConfig c = make_run_config(json(), {"model.layers=3", "model.layer=mesa"});
  EXPECT_EQ(c.model.mixers, std::vector<MixerKind>(3, MixerKind::Mesa));
}

TEST(RunConfigOverrides, LastSetWinsAndSetBeatsFile) {
  const json file = {{"model", {{"heads", 2}}}, {"optim", {{"lr", 0.01}}}};
  const RunConfig c = make_run_config(file, {"model.heads=3", "model.heads=5"});
  EXPECT_EQ(c.model.heads, 5);
  EXPECT_DOUBLE_EQ(c.optim.peak_lr, 0.01);  // from the file
  EXPECT_EQ(c.model.key_size, 20);          // untouched default
}

TEST(RunConfigOverrides, EmbedDimFollowsDataDim) {
  const RunConfig c = make_run_config(json(), {"data.dim=5"});
  EXPECT_EQ(c.model.data_dim, 5);
  EXPECT_EQ(c.model.embed_dim, 20);
  EXPECT_EQ(c.resolved["model"]["embed_dim"], 20);
  // An explicit matching value is accepted too.
  EXPECT_EQ(make_run_config(json(), {"data.dim=5", "model.embed_dim=20"}).model.embed_dim, 20);
}

// ---------------------------------------------------------------------------------------
// Files.

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "mesalab_config_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFileTest, NestedFileConfig) {
  const std::string path = write("c.json", R"({
    "name": "nested",
    "data": {"dim": 4, "seq_len": 12},
    "model": {"layers": 3, "layer": ["lsa", "softmax", "lsa"], "heads": 2, "key_size": 8,
              "clip_act": 0.0},
    "optim": {"lr": 0.001, "use_schedule": false},
    "train": {"batch_size": 16, "steps": 10}
  })");
  const RunConfig c = make_run_config(load_config_file(path), {"train.steps=11"});
  EXPECT_EQ(c.name, "nested");
  EXPECT_EQ(c.data.dim, 4);
  EXPECT_EQ(c.data.seq_len, 12);
  EXPECT_EQ(c.model.mixers,
            (std::vector<MixerKind>{MixerKind::Linear, MixerKind::Softmax, MixerKind::Linear}));
  EXPECT_EQ(c.model.heads, 2);
  EXPECT_EQ(c.model.key_size, 8);
  EXPECT_EQ(c.model.embed_dim, 16);
  EXPECT_DOUBLE_EQ(c.model.clip_act, 0.0);
  EXPECT_DOUBLE_EQ(c.optim.peak_lr, 1e-3);
  EXPECT_FALSE(c.optim.use_schedule);
  EXPECT_EQ(c.train.batch_size, 16);
  EXPECT_EQ(c.train.steps, 11);
  EXPECT_EQ(c.optim.warmup_steps, 1000);  // defaults fill the rest
}

TEST_F(ConfigFileTest, UnknownKeyInFileNamesTheDottedKey) {
  const std::string path = write("c.json", R"({"model": {"layers": 2, "bogus_width": 3}})");
  const std::string msg = file_error(load_config_file(path));
  EXPECT_CONTAINS(msg, "model.bogus_width");
  EXPECT_CONTAINS(msg, "unknown");
}

TEST_F(ConfigFileTest, InvalidJsonNamesTheFile) {
  const std::string path = write("broken.json", R"({"model": {"layers": 2,}})");
  const std::string msg = error_of([&] { load_config_file(path); });
  EXPECT_CONTAINS(msg, "broken.json");
}

TEST_F(ConfigFileTest, MissingFileNamesTheFile) {
  const std::string msg = error_of([&] { load_config_file((dir_ / "absent.json").string()); });
  EXPECT_CONTAINS(msg, "absent.json");
}

TEST(RunConfigFile, TopLevelMustBeAnObject) {
  EXPECT_CONTAINS(file_error(json::array({1, 2})), "object");
}

// ---------------------------------------------------------------------------------------
// Errors name the key.

TEST(RunConfigErrors, UnknownKeyInSet) {
  const std::string msg = set_error({"bogus.key=1"});
  EXPECT_CONTAINS(msg, "'bogus.key'");
  EXPECT_CONTAINS(msg, "unknown");
  // A section name alone is not a key.
  EXPECT_CONTAINS(set_error({"model=3"}), "'model'");
}

TEST(RunConfigErrors, UnknownKeyInFile) {
  EXPECT_CONTAINS(file_error({{"optim", {{"learning_rate", 0.1}}}}), "optim.learning_rate");
  EXPECT_CONTAINS(file_error({{"bogus", 1}}), "'bogus'");
}

TEST(RunConfigErrors, WrongTypeStringForInt) {
  const std::string msg = set_error({"model.layers=three"});
  EXPECT_CONTAINS(msg, "model.layers");
  EXPECT_CONTAINS(msg, "integer");
  EXPECT_CONTAINS(file_error({{"train", {{"batch_size", "64"}}}}), "train.batch_size");
}

TEST(RunConfigErrors, WrongTypeFloatForInt) {
  const std::string msg = set_error({"train.batch_size=2.5"});
  EXPECT_CONTAINS(msg, "train.batch_size");
  EXPECT_CONTAINS(msg, "integer");
  EXPECT_CONTAINS(file_error({{"model", {{"heads", 4.0}}}}), "model.heads");
}

TEST(RunConfigErrors, WrongTypeOthers) {
  EXPECT_CONTAINS(set_error({"optim.lr=fast"}), "optim.lr");
  EXPECT_CONTAINS(set_error({"optim.use_schedule=1"}), "optim.use_schedule");
  EXPECT_CONTAINS(set_error({"optim.lr=true"}), "optim.lr");
  EXPECT_CONTAINS(set_error({"model.layer=3"}), "model.layer");
  EXPECT_CONTAINS(set_error({"model.layer=[]"}), "model.layer");
}

TEST(RunConfigErrors, OutOfRange) {
  std::string msg = set_error({"optim.lr=-1"});
  EXPECT_CONTAINS(msg, "optim.lr");
  EXPECT_CONTAINS(msg, "range");
  msg = set_error({"train.batch_size=0"});
  EXPECT_CONTAINS(msg, "train.batch_size");
  EXPECT_CONTAINS(msg, "range");
  EXPECT_CONTAINS(set_error({"model.layers=0"}), "model.layers");
  EXPECT_CONTAINS(set_error({"model.clip_act=-0.5"}), "model.clip_act");
  EXPECT_CONTAINS(file_error({{"data", {{"seq_len", -3}}}}), "data.seq_len");
  // In the schema's range but rejected by the optimizer's own validation.
  EXPECT_CONTAINS(set_error({"optim.lr=0"}), "optim.lr");
  EXPECT_CONTAINS(set_error({"optim.warmup_steps=30000"}), "optim.decay_steps");
}

TEST(RunConfigErrors, EmbedDimMustMatchConstructedTokens) {
  const std::string msg = set_error({"model.embed_dim=30"});
  EXPECT_CONTAINS(msg, "model.embed_dim");
  EXPECT_CONTAINS(msg, "40");
  EXPECT_CONTAINS(set_error({"data.dim=5", "model.embed_dim=40"}), "model.embed_dim");
}

TEST(RunConfigTokens, RawTokensAreEmbeddedFromTheObservedDim) {
  const RunConfig raw = make_run_config(json(), {"data.tokens=raw", "model.embed_dim=64"});
  EXPECT_EQ(raw.tokens, TokenFormat::Raw);
  EXPECT_EQ(raw.model.input_dim, 10);
  EXPECT_EQ(raw.model.embed_dim, 64);
  EXPECT_EQ(raw.model.token_dim(), 10);
  const RunConfig delay = make_run_config(
      json(), {"data.tokens=delay", "data.obs_dim=5", "data.noise_obs=0.1", "model.embed_dim=22"});
  EXPECT_EQ(delay.model.data_dim, 5);
  EXPECT_EQ(delay.model.input_dim, 0);
  EXPECT_EQ(delay.model.token_dim(), 22);
  const RunConfig observed = make_run_config(json(), {"data.obs_dim=3"});
  EXPECT_EQ(observed.model.data_dim, 3);
  EXPECT_EQ(observed.model.embed_dim, 12) << "constructed tokens are 4 x observed dim wide";
}

TEST(RunConfigTokens, EmbeddedConstructedTokensHaveAnInputAndOutputEmbedding) {
  const RunConfig plain = make_run_config(json(), {});
  EXPECT_EQ(plain.model.input_dim, 0);
  const RunConfig embedded = make_run_config(json(), {"model.embed_tokens=true"});
  EXPECT_EQ(embedded.model.input_dim, 40) << "Win: 4 D x E";
  EXPECT_EQ(embedded.model.embed_dim, 40);
  EXPECT_EQ(embedded.model.token_dim(), 40);
  const RunConfig wide = make_run_config(json(), {"model.embed_tokens=true", "model.embed_dim=64"});
  EXPECT_EQ(wide.model.embed_dim, 64) << "with an embedding E is free";
  const RunConfig masked =
      make_run_config(json(), {"model.embed_tokens=true", "data.tokens=constructed_masked"});
  EXPECT_EQ(masked.model.input_dim, 40);
  EXPECT_CONTAINS(set_error({"model.embed_tokens=true", "data.tokens=raw"}), "model.embed_tokens");
}

TEST(RunConfigErrors, MesaLambdaStaysWhereItsSquareIsANormalFloat) {
  EXPECT_CONTAINS(set_error({"model.mesa_lambda_init=1e-30"}), "model.mesa_lambda_init");
  EXPECT_CONTAINS(set_error({"model.mesa_lambda_init=1e20"}), "model.mesa_lambda_init");
  EXPECT_NO_THROW(make_run_config(json(), {"model.mesa_lambda_init=1e-15"}));
}

TEST(RunConfigErrors, DataKindsAndObservationModel) {
  EXPECT_CONTAINS(set_error({"data.kind=chaotic"}), "data.kind");
  EXPECT_CONTAINS(set_error({"data.tokens=onehot"}), "data.tokens");
  EXPECT_CONTAINS(set_error({"data.min_eig=0.95"}), "data.min_eig");
  EXPECT_CONTAINS(set_error({"data.eye_obs=true", "data.obs_dim=4"}), "data.eye_obs");
  EXPECT_CONTAINS(set_error({"data.kind=nonlinear", "data.obs_dim=4"}), "data.obs_dim");
  EXPECT_CONTAINS(set_error({"data.noise_obs=-1"}), "data.noise_obs");
  EXPECT_CONTAINS(set_error({"data.tokens=delay", "data.obs_dim=5", "model.embed_dim=4"}),
                  "model.embed_dim");
  EXPECT_CONTAINS(set_error({"model.mlp=true", "model.mlp_hidden=0"}), "model.mlp_hidden");
}

TEST(RunConfigErrors, LayerListLengthMismatch) {
  std::string msg = set_error({R"(model.layer=["softmax","mesa"])", "model.layers=3"});
  EXPECT_CONTAINS(msg, "model.layer");
  EXPECT_CONTAINS(msg, "3");
  EXPECT_CONTAINS(set_error({R"(model.layer=["lsa"])"}), "model.layer");
}

TEST(RunConfigErrors, UnknownLayerKind) {
  std::string msg = set_error({"model.layer=transformerxl"});
  EXPECT_CONTAINS(msg, "model.layer");
  EXPECT_CONTAINS(msg, "transformerxl");
  EXPECT_CONTAINS(msg, "softmax");  // lists the allowed kinds
  msg = set_error({R"(model.layer=["lsa","gru"])"});
  EXPECT_CONTAINS(msg, "model.layer");
  EXPECT_CONTAINS(msg, "gru");
}

TEST(RunConfigErrors, MalformedSet) {
  std::string msg = set_error({"model.layers"});
  EXPECT_CONTAINS(msg, "key=value");
  EXPECT_CONTAINS(msg, "model.layers");
  EXPECT_CONTAINS(set_error({"=3"}), "key=value");
}

TEST(RunConfigErrors, BadRunName) {
  EXPECT_CONTAINS(set_error({"name=a/b"}), "name");
  EXPECT_CONTAINS(set_error({"name=.."}), "name");
  EXPECT_CONTAINS(set_error({"name="}), "name");
}

// The schema on its own (no run-config semantics).
TEST(ConfigSchema, ResolveAndValidate) {
  const ConfigSchema schema(
      {{"a.n", ConfigType::Int, 1, "n", 0, 10, {}},
       {"a.x", ConfigType::Float, 0.5, "x", -INFINITY, INFINITY, {}},
       {"b", ConfigType::String, "p", "b", -INFINITY, INFINITY, {"p", "q"}},
       {"c", ConfigType::StringList, json::array({"p"}), "c", -INFINITY, INFINITY, {"p", "q"}}});
  const json r = schema.resolve(json::parse(R"({"a": {"x": 2}})"), {"b=q", R"(c=["q","p"])"});
  EXPECT_EQ(r, json::parse(R"({"a": {"n": 1, "x": 2}, "b": "q", "c": ["q", "p"]})"));
  EXPECT_CONTAINS(error_of([&] { schema.resolve(json(), {"a.n=11"}); }), "a.n");
  EXPECT_CONTAINS(error_of([&] { schema.resolve(json(), {"b=r"}); }), "'b'");
  EXPECT_CONTAINS(error_of([&] { schema.resolve(json(), {"c=p"}); }), "'c'");  // not a list
  EXPECT_CONTAINS(error_of([&] { schema.validate(json::parse(R"({"a": {"m": 1}})")); }), "a.m");
  EXPECT_NO_THROW(schema.validate(r));
}

TEST(ConfigFlatten, NestedToDotted) {
  EXPECT_EQ(flatten_config(json::parse(R"({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"})")),
            json::parse(R"({"a.b": 1, "a.c.d": [1, 2], "e": "x"})"));
}

}  // namespace
}  // namespace mesalab
