#include "analysis/linearization.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <memory>
#include <string>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "train/evaluation.hpp"
#include "train/optimizer.hpp"

namespace mesalab {

// Held-out batches use steps from here on, which no fit reaches.
static constexpr uint64_t kHeldOutStep = uint64_t(1) << 40;

void LinearizeOptions::validate() const {
  if (steps < 0) fail("linearize: steps must be >= 0 (got {})", steps);
  if (!(lr > 0)) fail("linearize: lr must be > 0 (got {})", lr);
  if (batch < 1) fail("linearize: batch must be >= 1 (got {})", batch);
  if (!(weight_decay >= 0)) fail("linearize: weight_decay must be >= 0 (got {})", weight_decay);
  if (fit_test_batches < 1)
    fail("linearize: fit_test_batches must be >= 1 (got {})", fit_test_batches);
  if (record_every < 1) fail("linearize: record_every must be >= 1 (got {})", record_every);
}

std::vector<int> layers_to_linearize(const ModelConfig& model, const std::vector<int>& requested) {
  const int L = model.layers();
  if (!requested.empty()) {
    for (size_t i = 0; i < requested.size(); ++i) {
      if (requested[i] < 0 || requested[i] >= L)
        fail("linearize: layer {} out of range (the model has layers 0..{})", requested[i], L - 1);
      if (std::find(requested.begin(), requested.begin() + long(i), requested[i]) !=
          requested.begin() + long(i))
        fail("linearize: layer {} requested twice", requested[i]);
    }
    return requested;
  }
  std::vector<int> layers;
  std::vector<std::string> kinds;
  for (int l = 0; l < L; ++l) {
    kinds.emplace_back(mixer_name(model.mixers[size_t(l)]));
    if (model.mixers[size_t(l)] == MixerKind::Softmax) layers.push_back(l);
  }
  if (layers.empty())
    fail("linearize: the model has no softmax layer (layers: {}); name layers to fit explicitly",
         fmt::join(kinds, ", "));
  return layers;
}

// Per chunk of the frozen forward, per fitted layer l (rows of the chunk's sequences):
//   input = a_l (attn_in),  target = mixed_l Wo_l   (N, E), Wo: (H*K, E)
void teacher_data(BatchRunner<float>& frozen, const Transformer& model, const float* params,
                  const float* tokens, TeacherData& out) {
  const ModelConfig& c = model.config();
  const int T = frozen.seq_len(), E = c.embed_dim, HK = c.heads * c.key_size;
  const size_t block = size_t(frozen.batch()) * T * E;
  out.inputs.resize(out.layers.size());
  out.targets.resize(out.layers.size());
  for (size_t i = 0; i < out.layers.size(); ++i) {
    out.inputs[i].resize(block);
    out.targets[i].resize(block);
  }
  frozen.forward_chunks(params, tokens, [&](int first, int count, const Workspace<float>& ws) {
    const size_t N = size_t(count) * T, offset = size_t(first) * T * E;
    for (size_t i = 0; i < out.layers.size(); ++i) {
      const int l = out.layers[i];
      const LayerView<const float> a = ws.layer(l);
      std::copy_n(a.attn_in, N * E, out.inputs[i].data() + offset);
      mat(out.targets[i].data() + offset, N, E).noalias() =
          mat(a.mixed, N, HK) * mat(params + model.layer(l).o, HK, E);
    }
  });
}

SplicedModel splice_student(const Transformer& model, const std::vector<float>& params, int layer,
                            const LinearStudent& student, const float* student_params) {
  if (params.size() != model.num_params())
    fail("splice: {} parameters for a model of {}", params.size(), model.num_params());
  ModelConfig cfg = model.config();
  if (layer < 0 || layer >= cfg.layers())
    fail("splice: layer {} out of range (the model has layers 0..{})", layer, cfg.layers() - 1);
  cfg.mixers[size_t(layer)] = MixerKind::Linear;
  SplicedModel out{Transformer(cfg), {}};
  out.params.resize(out.model.num_params());
  // By name: a mesa layer's lambdas have no place in the spliced model.
  for (const ParamSpec& spec : out.model.layout().specs()) {
    const ParamSpec& src = model.layout().at(spec.name);
    std::copy_n(params.data() + src.offset, spec.size, out.params.data() + spec.offset);
  }
  student.write_into(out.model, layer, student_params, out.params.data());
  return out;
}

static double test_loss_on(const Transformer& model, const std::vector<float>& params,
                           const RunConfig& cfg, const std::vector<TokenBatch>& test_set) {
  BatchRunner<float> runner(model, cfg.train.test_batch_size, cfg.data.seq_len,
                            /*forward_only=*/true);
  return curve_mean(per_step_loss(runner, params.data(), test_set));
}

double run_test_loss(const Transformer& model, const std::vector<float>& params,
                     const RunConfig& cfg) {
  return test_loss_on(
      model, params, cfg,
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size));
}

namespace {

// One layer's fit: its student, parameters, Adam moments and runner.
struct StudentFit {
  LinearStudent student;
  std::vector<float> params, grads, m, v;
  StudentRunner<float> runner;
  double block_loss = 0.0;  // training loss summed since the last record
  LayerLinearization result;

  StudentFit(const ModelConfig& model, int layer, const LinearizeOptions& o, int seq_len)
      : student(student_config_of(model, layer)),
        params(student.num_params()),
        grads(student.num_params()),
        m(student.num_params(), 0.0f),
        v(student.num_params(), 0.0f),
        runner(student, o.batch, seq_len) {
    student.init_params(params.data(), model.init_std, o.seed, uint64_t(layer));
    result.layer = layer;
    result.kind = model.mixers[size_t(layer)];
  }
};

}  // namespace

LinearizationResult linearize(const Transformer& model, const std::vector<float>& params,
                              const RunConfig& cfg, const LinearizeOptions& options) {
  options.validate();
  if (params.size() != model.num_params())
    fail("linearize: {} parameters for a model of {}", params.size(), model.num_params());
  const ModelConfig& mc = model.config();
  const int T = cfg.data.seq_len;
  TeacherData teacher;
  teacher.layers = layers_to_linearize(mc, options.layers);
  std::vector<std::unique_ptr<StudentFit>> fits;
  for (int l : teacher.layers) fits.push_back(std::make_unique<StudentFit>(mc, l, options, T));

  OptimConfig adam;
  adam.peak_lr = options.lr;
  adam.use_schedule = false;
  adam.weight_decay = options.weight_decay;
  adam.grad_clip = options.grad_clip;
  BatchRunner<float> frozen(model, options.batch, T, /*forward_only=*/true);
  const TokenSource source = token_source(cfg);
  TokenBatch batch;
  for (int64_t step = 0; step < options.steps; ++step) {
    fill_token_batch(source, options.seed, RngPurpose::Linearization, uint64_t(step), options.batch,
                     batch, /*keep_states=*/false);
    teacher_data(frozen, model, params.data(), batch.tokens.data(), teacher);
    double mean_loss = 0.0;
    for (size_t i = 0; i < fits.size(); ++i) {
      StudentFit& f = *fits[i];
      const double loss = f.runner.loss_and_grad(f.params.data(), teacher.inputs[i].data(),
                                                 teacher.targets[i].data(), f.grads.data());
      adamw_step<float>(adam, step, f.params.data(), f.grads.data(), f.m.data(), f.v.data(),
                        f.params.size());
      f.block_loss += loss;
      mean_loss += loss / double(fits.size());
      const int64_t done = step + 1;
      if (done % options.record_every == 0 || done == options.steps) {
        const int64_t in_block = (done - 1) % options.record_every + 1;
        f.result.fit_curve.push_back(f.block_loss / double(in_block));
        f.block_loss = 0.0;
      }
    }
    if (options.on_step) options.on_step(step + 1, mean_loss);
  }

  // Held-out fit: the fitted and the zero student on batches no step has seen.
  for (int j = 0; j < options.fit_test_batches; ++j) {
    fill_token_batch(source, options.seed, RngPurpose::Linearization, kHeldOutStep + uint64_t(j),
                     options.batch, batch, /*keep_states=*/false);
    teacher_data(frozen, model, params.data(), batch.tokens.data(), teacher);
    for (size_t i = 0; i < fits.size(); ++i) {
      StudentFit& f = *fits[i];
      const double n = double(options.fit_test_batches);
      f.result.fit_loss += f.runner.loss_and_grad(f.params.data(), teacher.inputs[i].data(),
                                                  teacher.targets[i].data(), nullptr) /
                           n;
      double sq = 0.0;
      for (float y : teacher.targets[i]) sq += double(y) * double(y);
      f.result.zero_loss += sq / (2.0 * options.batch * T) / n;
    }
  }

  const std::vector<TokenBatch> test_set =
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size);
  LinearizationResult result;
  result.steps = options.steps;
  result.record_every = options.record_every;
  result.original_test_loss = test_loss_on(model, params, cfg, test_set);
  for (const auto& f : fits) {
    const SplicedModel spliced =
        splice_student(model, params, f->result.layer, f->student, f->params.data());
    LayerLinearization r = f->result;
    r.test_loss = test_loss_on(spliced.model, spliced.params, cfg, test_set);
    r.ratio = r.test_loss / result.original_test_loss;
    r.student = f->params;
    result.layers.push_back(std::move(r));
  }
  return result;
}

double median_ratio(const LinearizationResult& result) {
  if (result.layers.empty()) fail("median ratio of a linearization without layers");
  std::vector<double> ratios;
  for (const LayerLinearization& l : result.layers) ratios.push_back(l.ratio);
  std::sort(ratios.begin(), ratios.end());
  const size_t n = ratios.size();
  return n % 2 == 1 ? ratios[n / 2] : 0.5 * (ratios[n / 2 - 1] + ratios[n / 2]);
}

nlohmann::json linearization_settings_json(const LinearizeOptions& options,
                                           const std::vector<int>& layers) {
  return {{"layers", layers},
          {"steps", options.steps},
          {"lr", options.lr},
          {"batch", options.batch},
          {"weight_decay", options.weight_decay},
          {"grad_clip", options.grad_clip},
          {"seed", options.seed},
          {"fit_test_batches", options.fit_test_batches},
          {"record_every", options.record_every}};
}

nlohmann::json linearization_json(const LinearizationResult& result,
                                  const LinearizeOptions& options) {
  std::vector<int> fitted;
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerLinearization& l : result.layers) {
    fitted.push_back(l.layer);
    layers.push_back({{"layer", l.layer},
                      {"kind", mixer_name(l.kind)},
                      {"ratio", l.ratio},
                      {"test_loss", l.test_loss},
                      {"fit_loss", l.fit_loss},
                      {"zero_loss", l.zero_loss},
                      {"relative_fit_loss", l.relative_fit_loss()},
                      {"fit_curve", l.fit_curve}});
  }
  return {{"settings", linearization_settings_json(options, fitted)},
          {"original_test_loss", result.original_test_loss},
          {"median_ratio", result.layers.empty() ? 0.0 : median_ratio(result)},
          {"layers", layers}};
}

}  // namespace mesalab
