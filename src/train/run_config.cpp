#include "train/run_config.hpp"

#include "core/error.hpp"

namespace mesalab {

using nlohmann::json;

const ConfigSchema& run_config_schema() {
  constexpr double inf = std::numeric_limits<double>::infinity();
  static const ConfigSchema schema({
      {"name", ConfigType::String, "default",
       "run name; the run directory is <train.runs_dir>/<name>"},
      {"data.kind",
       ConfigType::String,
       "linear",
       "sequence generator: linear (Haar W per sequence), contracting (real eigenvalues in "
       "[min_eig, max_eig]), nonlinear (W phi(s)), fixed (one W for all)",
       -inf,
       inf,
       {"linear", "contracting", "nonlinear", "fixed"}},
      {"data.tokens",
       ConfigType::String,
       "constructed",
       "token format: constructed e_t = [0, o_t, o_t, o_{t-1}] (E = 4 obs dims); raw o_t with "
       "an input/output embedding; delay [o_t, o_{t-1}, ...] filling E; constructed_masked "
       "e_t = [0, 0, o_t, o_{t-1}] (the official mask_inputs)",
       -inf,
       inf,
       {"constructed", "raw", "delay", "constructed_masked"}},
      {"data.dim", ConfigType::Int, 10, "state dimension D", 1, 1024},
      {"data.seq_len", ConfigType::Int, 50, "sequence length T", 1, 100000},
      {"data.noise_std", ConfigType::Float, 0.01, "transition noise sigma", 0, inf},
      {"data.state_clip", ConfigType::Float, 10.0, "states are clipped to +-state_clip", 1e-300,
       inf},
      {"data.init_range", ConfigType::Float, 1.0, "s_1 ~ U[-r, r]^D", 0, inf},
      {"data.min_eig", ConfigType::Float, 0.3, "contracting: smallest eigenvalue of W", -inf, inf},
      {"data.max_eig", ConfigType::Float, 0.9, "contracting: largest eigenvalue of W", -inf, inf},
      {"data.nonlinear_hidden", ConfigType::Int, 0,
       "nonlinear: hidden width of f(x) = gelu(x A) B; 0 = 4 * data.dim", 0, 65536},
      {"data.nonlinear_seed", ConfigType::Int, 42,
       "nonlinear: seed of the fixed A, B (independent of train.seed)", 0, 9.007199254740992e15},
      {"data.fixed_w_seed", ConfigType::Int, 42, "fixed: seed of the one shared W", 0,
       9.007199254740992e15},
      {"data.obs_dim", ConfigType::Int, 0, "observations o_t = C s_t + noise; 0 = none (o_t = s_t)",
       0, 65536},
      {"data.eye_obs", ConfigType::Bool, false, "observation matrix C = I (needs obs_dim = dim)"},
      {"data.noise_obs", ConfigType::Float, 0.0, "observation noise std", 0, inf},
      {"model.layers", ConfigType::Int, 2, "number of attention layers L", 1, 64},
      {"model.layer",
       ConfigType::StringOrStringList,
       "lsa",
       "layer kind, or a list with one kind per layer",
       -inf,
       inf,
       {"lsa", "softmax", "mesa"}},
      {"model.heads", ConfigType::Int, 4, "attention heads H", 1, 256},
      {"model.key_size", ConfigType::Int, 20, "key size K", 1, 4096},
      {"model.embed_dim", ConfigType::Int, 0,
       "residual width E; 0 = 4 x observed dim (constructed tokens need exactly that)", 0, 65536},
      {"model.embed_tokens", ConfigType::Bool, false,
       "constructed tokens through a learned input/output embedding (Win: 4 obs dims x E, Wout: "
       "E x obs dims), a linear path from s_t to the prediction; raw tokens always have one"},
      {"model.layer_norm", ConfigType::Bool, false, "pre-LayerNorm blocks (full transformer)"},
      {"model.mlp", ConfigType::Bool, false, "an MLP W2 gelu(W1 x) after each attention"},
      {"model.mlp_hidden", ConfigType::Int, 80, "MLP hidden width", 1, 1 << 20},
      {"model.positional_codes", ConfigType::Bool, false,
       "add fixed sinusoidal positional codes to the input of the first block"},
      {"model.positional_codes_qk", ConfigType::Bool, false,
       "concatenate fixed sinusoidal positional codes (width E) to the first block's query and "
       "key inputs only (the official use_pe_kq; tensors layers.0.q_pos, layers.0.k_pos)"},
      {"model.clip_act", ConfigType::Float, 1.5,
       "residual stream clipped to +-clip_act after each layer; 0 disables", 0, inf},
      {"model.init_std", ConfigType::Float, 2e-4, "every weight ~ N(0, init_std^2)", 0, inf},
      {"model.mesa_lambda_init", ConfigType::Float, 1.0,
       "mesa layers: initial lambda (R_0 = lambda I); its square must stay a normal float", 1e-15,
       1e15},
      {"model.mesa_lambda_param",
       ConfigType::String,
       "raw",
       "mesa layers: lambda stored raw (official; must stay > 0) or as softplus(theta) (positive "
       "by construction)",
       -inf,
       inf,
       {"raw", "softplus"}},
      {"model.mesa_schlag_norm", ConfigType::Bool, false,
       "mesa layers: normalise queries and values (the regression targets) per head and token"},
      {"model.mesa_schlag_norm_targets", ConfigType::Bool, false,
       "mesa layers: also divide values by ||keys|| (official code quirk)"},
      {"model.mesa_normalize_logits", ConfigType::Bool, false,
       "mesa layers: L2-normalise each causal logit row"},
      {"optim.lr", ConfigType::Float, 3e-4, "peak learning rate", 1e-300, inf},
      {"optim.init_lr", ConfigType::Float, 0.0, "learning rate at step 0 (warmup start)", 0, inf},
      {"optim.end_lr", ConfigType::Float, 1e-5, "learning rate at the end of the cosine decay", 0,
       inf},
      {"optim.warmup_steps", ConfigType::Int, 1000, "linear warmup steps", 0, 1e12},
      {"optim.decay_steps", ConfigType::Int, 20000,
       "step at which the cosine reaches end_lr (warmup included)", 1, 1e12},
      {"optim.use_schedule", ConfigType::Bool, true, "false: constant optim.lr"},
      {"optim.weight_decay", ConfigType::Float, 0.05,
       "decoupled weight decay (times lr), on every parameter", 0, inf},
      {"optim.grad_clip", ConfigType::Float, 1.0,
       "element-wise gradient clipping to +-grad_clip; 0 disables", 0, inf},
      {"optim.beta1", ConfigType::Float, 0.9, "Adam beta1", 0, 0.999999},
      {"optim.beta2", ConfigType::Float, 0.999, "Adam beta2", 0, 0.99999999},
      {"optim.eps", ConfigType::Float, 1e-8, "Adam epsilon", 1e-30, 1},
      {"train.steps", ConfigType::Int, 20000, "training steps", 0, 1e12},
      {"train.batch_size", ConfigType::Int, 256, "sequences per step", 1, 1 << 20},
      {"train.seed", ConfigType::Int, 42, "seed of init, training and test data", 0,
       9.007199254740992e15},
      {"train.eval_every", ConfigType::Int, 100, "steps between test-loss evaluations", 1, 1e12},
      {"train.test_batches", ConfigType::Int, 10, "fixed test set: number of batches", 1, 100000},
      {"train.test_batch_size", ConfigType::Int, 256, "fixed test set: sequences per batch", 1,
       1 << 20},
      {"train.checkpoint_every", ConfigType::Int, 1000, "steps between checkpoints", 1, 1e12},
      {"train.threads", ConfigType::Int, 0,
       "OpenMP threads, 0 = all cores (results are identical for any value)", 0, 4096},
      {"train.mesa_recompute_inverses", ConfigType::Bool, false,
       "mesa layers: recompute each head's inverse states in the backward instead of storing "
       "them (results identical; a quarter of a mesa layer's cache, 0-16% slower)"},
      {"train.sensitivity_every", ConfigType::Int, 0,
       "record the first block's sensitivity to earlier inputs (64 test sequences, targets 1, "
       "(T-1)/2, T-1) every N steps into RUN/sensitivity.jsonl; 0 = off (results identical; "
       "the official epoch is 100 steps)",
       0, 1e12},
      {"train.runs_dir", ConfigType::String, "runs", "directory holding run directories"},
      {"debug.inject_nan_at_step", ConfigType::Int, -1,
       "testing hook: poison one gradient with NaN at this step (-1 = off)", -1, 1e12},
  });
  return schema;
}

RunConfig make_run_config(const json& file, const std::vector<std::string>& overrides) {
  const json c = run_config_schema().resolve(file, overrides);
  RunConfig r;
  r.name = c["name"];
  if (r.name.empty() || r.name.find('/') != std::string::npos || r.name == "." || r.name == "..")
    fail("config key 'name' must be a non-empty name without '/' (got '{}')", r.name);

  const json& d = c["data"];
  r.data.dim = d["dim"];
  r.data.seq_len = d["seq_len"];
  r.data.noise_std = d["noise_std"];
  r.data.state_clip = d["state_clip"];
  r.data.init_range = d["init_range"];
  r.data.kind = parse_dynamics(d["kind"].get<std::string>());
  r.data.min_eig = d["min_eig"];
  r.data.max_eig = d["max_eig"];
  r.data.nonlinear_hidden = d["nonlinear_hidden"];
  r.data.nonlinear_seed = d["nonlinear_seed"].get<uint64_t>();
  r.data.fixed_w_seed = d["fixed_w_seed"].get<uint64_t>();
  r.data.obs_dim = d["obs_dim"];
  r.data.eye_obs = d["eye_obs"];
  r.data.noise_obs = d["noise_obs"];
  validate(r.data);
  r.tokens = parse_token_format(d["tokens"].get<std::string>());

  const json& m = c["model"];
  const int layers = m["layers"];
  r.model.mixers.clear();
  if (m["layer"].is_string()) {
    r.model.mixers.assign(size_t(layers), parse_mixer(m["layer"].get<std::string>()));
  } else {
    if (int(m["layer"].size()) != layers)
      fail("config key 'model.layer' lists {} layer kinds but model.layers = {}", m["layer"].size(),
           layers);
    for (const auto& kind : m["layer"])
      r.model.mixers.push_back(parse_mixer(kind.get<std::string>()));
  }
  // The model predicts the observations; constructed tokens fix E = 4 x observed dim, raw
  // tokens are embedded from the observed dim, delay tokens fill any E.
  const int observed = observed_dim(r.data);
  r.model.data_dim = observed;
  const int constructed_width = 4 * observed;
  r.model.embed_dim =
      m["embed_dim"].get<int>() == 0 ? constructed_width : m["embed_dim"].get<int>();
  const bool embed_tokens = m["embed_tokens"];
  if (embed_tokens && !is_constructed(r.tokens))
    fail(
        "config key 'model.embed_tokens' needs constructed tokens (raw tokens are always "
        "embedded), got data.tokens = '{}'",
        token_format_name(r.tokens));
  if (is_constructed(r.tokens) && !embed_tokens && r.model.embed_dim != constructed_width)
    fail(
        "config key 'model.embed_dim' = {} but constructed tokens [0, o_t, o_t, o_(t-1)] need "
        "embed_dim = 4 x observed dim = {} (or model.embed_tokens)",
        r.model.embed_dim, constructed_width);
  if (r.tokens == TokenFormat::Delay && r.model.embed_dim < observed)
    fail("config key 'model.embed_dim' = {} is smaller than the observed dim {} (delay tokens)",
         r.model.embed_dim, observed);
  r.model.input_dim = r.tokens == TokenFormat::Raw ? observed
                      : embed_tokens               ? constructed_width
                                                   : 0;
  r.model.layer_norm = m["layer_norm"];
  r.model.mlp = m["mlp"];
  r.model.mlp_hidden = m["mlp_hidden"];
  r.model.positional_codes = m["positional_codes"];
  r.model.positional_codes_qk = m["positional_codes_qk"];
  r.model.heads = m["heads"];
  r.model.key_size = m["key_size"];
  r.model.clip_act = m["clip_act"];
  r.model.init_std = m["init_std"];
  r.model.mesa_lambda_init = m["mesa_lambda_init"];
  r.model.mesa_lambda_softplus = m["mesa_lambda_param"] == "softplus";
  r.model.mesa.schlag_norm = m["mesa_schlag_norm"];
  r.model.mesa.schlag_norm_targets = m["mesa_schlag_norm_targets"];
  r.model.mesa.normalize_logits = m["mesa_normalize_logits"];
  r.model.validate();

  const json& o = c["optim"];
  r.optim.peak_lr = o["lr"];
  r.optim.init_lr = o["init_lr"];
  r.optim.end_lr = o["end_lr"];
  r.optim.warmup_steps = o["warmup_steps"];
  r.optim.decay_steps = o["decay_steps"];
  r.optim.use_schedule = o["use_schedule"];
  r.optim.weight_decay = o["weight_decay"];
  r.optim.grad_clip = o["grad_clip"];
  r.optim.beta1 = o["beta1"];
  r.optim.beta2 = o["beta2"];
  r.optim.eps = o["eps"];
  r.optim.validate();

  const json& t = c["train"];
  r.train.steps = t["steps"];
  r.train.batch_size = t["batch_size"];
  r.train.seed = t["seed"].get<uint64_t>();
  r.train.eval_every = t["eval_every"];
  r.train.test_batches = t["test_batches"];
  r.train.test_batch_size = t["test_batch_size"];
  r.train.checkpoint_every = t["checkpoint_every"];
  r.train.threads = t["threads"];
  r.train.mesa_recompute_inverses = t["mesa_recompute_inverses"];
  r.train.sensitivity_every = t["sensitivity_every"];
  r.train.runs_dir = t["runs_dir"];
  r.train.inject_nan_at_step = c["debug"]["inject_nan_at_step"];
  r.resolved = c;
  r.resolved["model"]["embed_dim"] = r.model.embed_dim;
  return r;
}

int RunConfig::delay_baseline_width() const {
  return tokens == TokenFormat::Delay ? model.embed_dim : kDelayBaselineWidth;
}

}  // namespace mesalab
