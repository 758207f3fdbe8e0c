#include "analysis/linearization.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/stats.hpp"
#include "data/token_batch.hpp"
#include "model/batch_runner.hpp"
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

// The students of every fitted layer. Their parameters share one buffer (student i's from
// offset[i]), so one reduction and one AdamW loop serve them all: clipping, moments and
// decay are element-wise, so this is the same as one update per student.
class Fitter {
 public:
  Fitter(const Transformer& model, const float* params, std::vector<int> layers,
         const LinearizeOptions& o, int seq_len)
      : model_(model), params_(params), layers_(std::move(layers)), batch_(o.batch), T_(seq_len) {
    const ModelConfig& mc = model.config();
    for (int l : layers_) {
      students_.push_back(std::make_unique<LinearStudent>(student_config_of(mc, l)));
      runners_.push_back(std::make_unique<StudentRunner<float>>(*students_.back(), batch_, T_));
      offset_.push_back(total_);
      total_ += students_.back()->num_params();
    }
    theta_.resize(total_);
    for (size_t i = 0; i < layers_.size(); ++i)
      students_[i]->init_params(theta_.data() + offset_[i], mc.init_std, o.seed,
                                uint64_t(layers_[i]));
    grads_.resize(total_);
    m_.assign(total_, 0.0f);
    v_.assign(total_, 0.0f);
    const int chunk = std::min(batch_, kChunkSequences);
    const size_t threads = size_t(std::max(1, omp_get_max_threads()));
    for (size_t t = 0; t < threads; ++t) {
      ws_.push_back(model.make_workspace<float>(chunk, T_, /*forward_only=*/true));
      target_.emplace_back(size_t(chunk) * T_ * mc.embed_dim);
    }
    chunks_ = (batch_ + kChunkSequences - 1) / kChunkSequences;
    partials_.resize(size_t(chunks_) * total_);
    loss_partials_.resize(layers_.size() * size_t(chunks_));
    zero_partials_.resize(loss_partials_.size());
    loss_.resize(layers_.size());
    zero_loss_.resize(layers_.size());
  }

  // One batch of tokens through the frozen model and every student. Per chunk, for each
  // fitted layer l (rows of the chunk's sequences):
  //   input = a_l (attn_in),  target = mixed_l Wo_l   (N, E), Wo: (H*K, E)
  // Fills loss(i) (the students') and zero_loss(i) (sum target^2 / (2 B T)), and with
  // with_grad the students' gradients.
  void run(const float* tokens, bool with_grad) {
    const ModelConfig& mc = model_.config();
    const int E = mc.embed_dim, HK = mc.heads * mc.key_size, in = mc.token_dim();
    for (size_t i = 0; i < layers_.size(); ++i) runners_[i]->prepare(theta_.data() + offset_[i]);
    if (size_t(omp_get_max_threads()) > ws_.size())
      fail_runtime("linearize: {} threads, but workspaces for {} were made", omp_get_max_threads(),
                   ws_.size());
    parallel_for(chunks_, [&](int c) {
      const size_t thread = size_t(omp_get_thread_num());
      Workspace<float>& ws = ws_[thread];
      const int first = c * kChunkSequences, count = std::min(kChunkSequences, batch_ - first);
      const size_t N = size_t(count) * T_;
      model_.forward(params_, tokens + size_t(first) * T_ * in, count, ws);
      float* target = target_[thread].data();
      for (size_t i = 0; i < layers_.size(); ++i) {
        const int l = layers_[i];
        const LayerView<const float> a = std::as_const(ws).layer(l);
        mat(target, N, E).noalias() = mat(a.mixed, N, HK) * mat(params_ + model_.layer(l).o, HK, E);
        const size_t at = i * size_t(chunks_) + size_t(c);
        loss_partials_[at] = runners_[i]->chunk(
            theta_.data() + offset_[i], a.attn_in, target, count,
            with_grad ? partials_.data() + size_t(c) * total_ + offset_[i] : nullptr);
        double sq = 0.0;
        for (size_t e = 0; e < N * size_t(E); ++e) sq += double(target[e]) * double(target[e]);
        zero_partials_[at] = sq;
      }
    });
    const double norm = 2.0 * batch_ * T_;
    for (size_t i = 0; i < layers_.size(); ++i) {
      loss_[i] = zero_loss_[i] = 0.0;
      for (int c = 0; c < chunks_; ++c) {
        loss_[i] += loss_partials_[i * size_t(chunks_) + size_t(c)] / norm;
        zero_loss_[i] += zero_partials_[i * size_t(chunks_) + size_t(c)] / norm;
      }
    }
    if (!with_grad) return;
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < total_; ++j) {
      double sum = double(partials_[j]);
      for (int c = 1; c < chunks_; ++c) sum += double(partials_[size_t(c) * total_ + j]);
      grads_[j] = float(sum);
    }
  }

  void update(const OptimConfig& adam, int64_t step) {
    adamw_step<float>(adam, step, theta_.data(), grads_.data(), m_.data(), v_.data(), total_);
  }

  size_t size() const { return layers_.size(); }
  int layer(size_t i) const { return layers_[i]; }
  double loss(size_t i) const { return loss_[i]; }
  double zero_loss(size_t i) const { return zero_loss_[i]; }
  const LinearStudent& student(size_t i) const { return *students_[i]; }
  const float* student_params(size_t i) const { return theta_.data() + offset_[i]; }

 private:
  const Transformer& model_;
  const float* params_;
  std::vector<int> layers_;
  int batch_, T_, chunks_ = 0;
  std::vector<std::unique_ptr<LinearStudent>> students_;  // runners keep references
  std::vector<std::unique_ptr<StudentRunner<float>>> runners_;
  std::vector<size_t> offset_;
  size_t total_ = 0;
  std::vector<float> theta_, grads_, m_, v_;
  std::vector<Workspace<float>> ws_;                   // per thread: the frozen model's chunk
  std::vector<std::vector<float>> target_;             // per thread: one layer's (N, E) target
  std::vector<float> partials_;                        // chunks x total: gradient partials
  std::vector<double> loss_partials_, zero_partials_;  // students x chunks
  std::vector<double> loss_, zero_loss_;
};

}  // namespace

LinearizationResult linearize(const Transformer& model, const std::vector<float>& params,
                              const RunConfig& cfg, const LinearizeOptions& options) {
  options.validate();
  if (params.size() != model.num_params())
    fail("linearize: {} parameters for a model of {}", params.size(), model.num_params());
  const ModelConfig& mc = model.config();
  const int T = cfg.data.seq_len;
  Fitter fitter(model, params.data(), layers_to_linearize(mc, options.layers), options, T);
  OptimConfig adam;
  adam.peak_lr = options.lr;
  adam.use_schedule = false;
  adam.weight_decay = options.weight_decay;
  adam.grad_clip = options.grad_clip;
  const TokenSource source = token_source(cfg);
  TokenBatch batch;
  std::vector<LayerLinearization> layers(fitter.size());
  std::vector<double> block_loss(fitter.size(), 0.0);  // training loss since the last record
  for (size_t i = 0; i < fitter.size(); ++i) {
    layers[i].layer = fitter.layer(i);
    layers[i].kind = mc.mixers[size_t(fitter.layer(i))];
  }
  for (int64_t step = 0; step < options.steps; ++step) {
    fill_token_batch(source, options.seed, RngPurpose::Linearization, uint64_t(step), options.batch,
                     batch, /*keep_states=*/false);
    fitter.run(batch.tokens.data(), /*with_grad=*/true);
    fitter.update(adam, step);
    const int64_t done = step + 1;
    const bool record = done % options.record_every == 0 || done == options.steps;
    double mean_loss = 0.0;
    for (size_t i = 0; i < fitter.size(); ++i) {
      block_loss[i] += fitter.loss(i);
      mean_loss += fitter.loss(i) / double(fitter.size());
      if (!record) continue;
      layers[i].fit_curve.push_back(block_loss[i] / double((done - 1) % options.record_every + 1));
      block_loss[i] = 0.0;
    }
    if (options.on_step) options.on_step(done, mean_loss);
  }

  // Held-out fit: the fitted and the zero student on batches no step has seen.
  for (int j = 0; j < options.fit_test_batches; ++j) {
    fill_token_batch(source, options.seed, RngPurpose::Linearization, kHeldOutStep + uint64_t(j),
                     options.batch, batch, /*keep_states=*/false);
    fitter.run(batch.tokens.data(), /*with_grad=*/false);
    for (size_t i = 0; i < fitter.size(); ++i) {
      layers[i].fit_loss += fitter.loss(i) / double(options.fit_test_batches);
      layers[i].zero_loss += fitter.zero_loss(i) / double(options.fit_test_batches);
    }
  }

  const std::vector<TokenBatch> test_set =
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, cfg.train.test_batch_size);
  LinearizationResult result;
  result.steps = options.steps;
  result.record_every = options.record_every;
  result.original_test_loss = test_loss_on(model, params, cfg, test_set);
  for (size_t i = 0; i < fitter.size(); ++i) {
    LayerLinearization& r = layers[i];
    const SplicedModel spliced =
        splice_student(model, params, r.layer, fitter.student(i), fitter.student_params(i));
    r.test_loss = test_loss_on(spliced.model, spliced.params, cfg, test_set);
    r.ratio = r.test_loss / result.original_test_loss;
    r.student.assign(fitter.student_params(i),
                     fitter.student_params(i) + fitter.student(i).num_params());
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
