#include "analysis/linear_student.hpp"

#include <omp.h>

#include <algorithm>
#include <string>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "model/batch_runner.hpp"
#include "model/linear_attention.hpp"
#include "model/positional_codes.hpp"

namespace mesalab {

void StudentConfig::validate() const {
  if (embed_dim < 1) fail("linear student: embed_dim must be >= 1 (got {})", embed_dim);
  if (heads < 1) fail("linear student: heads must be >= 1 (got {})", heads);
  if (key_size < 1) fail("linear student: key_size must be >= 1 (got {})", key_size);
}

StudentConfig student_config_of(const ModelConfig& model, int layer) {
  if (layer < 0 || layer >= model.layers())
    fail("layer {} out of range (the model has layers 0..{})", layer, model.layers() - 1);
  return {model.embed_dim, model.heads, model.key_size, layer == 0 && model.positional_codes_qk};
}

LinearStudent::LinearStudent(StudentConfig config) : config_(config) {
  config_.validate();
  const int64_t E = config_.embed_dim, HK = int64_t(config_.heads) * config_.key_size;
  offsets_.q = layout_.add("q", {E, HK});
  offsets_.k = layout_.add("k", {E, HK});
  if (config_.positions) {
    offsets_.q_pos = layout_.add("q_pos", {E, HK});
    offsets_.k_pos = layout_.add("k_pos", {E, HK});
  }
  offsets_.v = layout_.add("v", {E, HK});
  offsets_.o = layout_.add("o", {HK, E});
}

template <class S>
void LinearStudent::init_params(S* params, double std, uint64_t seed, uint64_t stream) const {
  const auto& specs = layout_.specs();
  for (size_t j = 0; j < specs.size(); ++j) {
    // ~0 keeps these streams apart from the batches' (seed, Linearization, step, sequence).
    Rng rng{seed, uint64_t(RngPurpose::Linearization), ~uint64_t(0), stream, j};
    S* p = params + specs[j].offset;
    for (size_t i = 0; i < specs[j].size; ++i) p[i] = S(std * rng.normal());
  }
}

// The model's tensor that student tensor `spec` stands for in layer `layer`, checked for
// shape; the model's layer must have a positional part iff the student has one.
static const ParamSpec& layer_tensor(const LinearStudent& student, const Transformer& model,
                                     int layer, const ParamSpec& spec) {
  if (layer < 0 || layer >= model.config().layers())
    fail("layer {} out of range (the model has layers 0..{})", layer, model.config().layers() - 1);
  const std::string prefix = "layers." + std::to_string(layer) + ".";
  const bool model_positions = model.layout().find(prefix + "q_pos") != nullptr;
  if (model_positions != student.config().positions)
    fail("linear student {} a positional part, but layer {} of the model {}",
         student.config().positions ? "has" : "has no", layer,
         model_positions ? "has one (layers.0.q_pos)" : "has none");
  const ParamSpec* dst = model.layout().find(prefix + spec.name);
  if (dst == nullptr)
    fail("the model has no tensor {}{} for the linear student", prefix, spec.name);
  if (dst->shape != spec.shape)
    fail("tensor {}{} has another shape than the linear student's {}", prefix, spec.name,
         spec.name);
  return *dst;
}

template <class S>
void LinearStudent::write_into(const Transformer& model, int layer, const S* student,
                               S* model_params) const {
  for (const ParamSpec& spec : layout_.specs()) {
    const ParamSpec& dst = layer_tensor(*this, model, layer, spec);
    std::copy_n(student + spec.offset, spec.size, model_params + dst.offset);
  }
}

template <class S>
void LinearStudent::read_from(const Transformer& model, int layer, const S* model_params,
                              S* student) const {
  for (const ParamSpec& spec : layout_.specs()) {
    const ParamSpec& src = layer_tensor(*this, model, layer, spec);
    std::copy_n(model_params + src.offset, spec.size, student + spec.offset);
  }
}

template <class S>
StudentRunner<S>::StudentRunner(const LinearStudent& student, int batch, int seq_len)
    : student_(student), batch_(batch), seq_len_(seq_len) {
  if (batch < 1 || seq_len < 1) fail("linear student: batch and seq_len must be >= 1");
  const StudentConfig& c = student.config();
  const int chunk = std::min(batch, kChunkSequences);
  const size_t rows = size_t(chunk) * seq_len, E = size_t(c.embed_dim);
  const size_t HK = size_t(c.heads) * c.key_size, TT = size_t(seq_len) * seq_len;
  Buffers w;
  for (auto* buf : {&w.q, &w.k, &w.v, &w.mixed, &w.dq, &w.dk, &w.dv, &w.dmixed})
    buf->resize(rows * HK);
  w.y.resize(rows * E);
  w.cache.resize(linear_attention_cache_size({chunk, seq_len, c.heads, c.key_size}));
  w.scratch.resize(TT);
  buffers_.assign(size_t(std::max(1, omp_get_max_threads())), w);
  if (c.positions) {
    std::vector<double> pe(size_t(seq_len) * E);
    sinusoidal_positions(seq_len, c.embed_dim, pe.data());
    positions_.assign(pe.begin(), pe.end());
    position_qk_.resize(2 * size_t(seq_len) * HK);
  }
  const int num_chunks = (batch + kChunkSequences - 1) / kChunkSequences;
  grad_partials_.resize(size_t(num_chunks) * student.num_params());
  loss_partials_.resize(size_t(num_chunks));
}

// One chunk of `count` sequences, with a = inputs, and r = y - target:
//   q = a Wq (+ P Wq_pos),  k = a Wk (+ P Wk_pos),  v = a Wv,  y = LSA(q, k, v) Wo
//   loss part = sum r^2 (the caller divides by 2 B T), so d loss / d y = r / (B T).
// Backward, each line differentiating the forward line named:
//   y = mixed Wo:       dWo = mixed^T dy,  dmixed = dy Wo^T
//   mixed = LSA(q,k,v): dq, dk, dv from linear_attention_backward
//   q = a Wq + P Wq_pos: dWq = a^T dq,  dWq_pos = P^T sum_b dq_b  (k, v alike)
template <class S>
double StudentRunner<S>::chunk(const S* params, const S* inputs, const S* targets, int count,
                               S* partial) {
  const int thread = omp_get_thread_num();
  if (size_t(thread) >= buffers_.size() || count < 1 || count > kChunkSequences)
    fail_runtime("StudentRunner: chunk of {} sequences on thread {} (buffers for {} threads)",
                 count, thread, buffers_.size());
  Buffers& w = buffers_[size_t(thread)];
  const StudentConfig& cfg = student_.config();
  const StudentOffsets& o = student_.offsets();
  const int T = seq_len_, E = cfg.embed_dim, HK = cfg.heads * cfg.key_size;
  const size_t N = size_t(count) * T, TH = size_t(T) * HK;
  const AttentionShape s{count, T, cfg.heads, cfg.key_size};
  // a, target: (N, E) rows of this chunk.
  const auto A = mat(inputs, N, E);
  const auto target = mat(targets, N, E);
  S* proj[3] = {w.q.data(), w.k.data(), w.v.data()};
  const size_t w_off[3] = {o.q, o.k, o.v};
  for (int j = 0; j < 3; ++j) mat(proj[j], N, HK).noalias() = A * mat(params + w_off[j], E, HK);
  if (cfg.positions)
    for (int b = 0; b < count; ++b)
      for (int j = 0; j < 2; ++j)
        mat(proj[j] + b * TH, T, HK) +=
            mat(static_cast<const S*>(position_qk_.data()) + j * TH, T, HK);
  linear_attention_forward(s, w.q.data(), w.k.data(), w.v.data(), w.cache.data(), w.mixed.data());
  auto R = mat(w.y.data(), N, E);
  R.noalias() = mat(static_cast<const S*>(w.mixed.data()), N, HK) * mat(params + o.o, HK, E);
  R -= target;
  double sq = 0.0;
  for (size_t i = 0; i < N * size_t(E); ++i) sq += double(w.y[i]) * double(w.y[i]);
  if (partial == nullptr) return sq;

  S* g = partial;
  R *= S(1) / (S(batch_) * S(T));  // R now holds dy
  mat(g + o.o, HK, E).noalias() = mat(static_cast<const S*>(w.mixed.data()), N, HK).transpose() * R;
  mat(w.dmixed.data(), N, HK).noalias() = R * mat(params + o.o, HK, E).transpose();
  linear_attention_backward(s, w.q.data(), w.k.data(), w.v.data(), w.cache.data(), w.dmixed.data(),
                            w.dq.data(), w.dk.data(), w.dv.data(), w.scratch.data());
  const S* d_proj[3] = {w.dq.data(), w.dk.data(), w.dv.data()};
  for (int j = 0; j < 3; ++j)
    mat(g + w_off[j], E, HK).noalias() = A.transpose() * mat(d_proj[j], N, HK);
  if (cfg.positions) {
    const auto Pm = mat(static_cast<const S*>(positions_.data()), T, E);
    const size_t pos_off[2] = {o.q_pos, o.k_pos};
    auto sum = mat(w.dmixed.data(), T, HK);  // dmixed is free again: reuse it for sum_b
    for (int j = 0; j < 2; ++j) {
      sum = mat(d_proj[j], T, HK);
      for (int b = 1; b < count; ++b) sum += mat(d_proj[j] + b * TH, T, HK);
      mat(g + pos_off[j], E, HK).noalias() = Pm.transpose() * sum;
    }
  }
  return sq;
}

// P Wq_pos and P Wk_pos are the same for every sequence: computed once per batch.
template <class S>
void StudentRunner<S>::prepare(const S* params) {
  const StudentConfig& cfg = student_.config();
  if (!cfg.positions) return;
  const int T = seq_len_, E = cfg.embed_dim, HK = cfg.heads * cfg.key_size;
  const auto Pm = mat(static_cast<const S*>(positions_.data()), T, E);
  const StudentOffsets& o = student_.offsets();
  mat(position_qk_.data(), T, HK).noalias() = Pm * mat(params + o.q_pos, E, HK);
  mat(position_qk_.data() + size_t(T) * HK, T, HK).noalias() = Pm * mat(params + o.k_pos, E, HK);
}

template <class S>
double StudentRunner<S>::loss_and_grad(const S* params, const S* inputs, const S* targets,
                                       S* grads) {
  const int T = seq_len_, E = student_.config().embed_dim;
  const size_t P = student_.num_params();
  prepare(params);
  const int num_chunks = int(loss_partials_.size());
  parallel_for(num_chunks, [&](int c) {
    const int first = c * kChunkSequences, count = std::min(kChunkSequences, batch_ - first);
    const size_t offset = size_t(first) * T * E;
    loss_partials_[size_t(c)] =
        chunk(params, inputs + offset, targets + offset, count,
              grads != nullptr ? grad_partials_.data() + size_t(c) * P : nullptr);
  });
  if (grads != nullptr) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < P; ++i) {
      double sum = double(grad_partials_[i]);
      for (int c = 1; c < num_chunks; ++c) sum += double(grad_partials_[size_t(c) * P + i]);
      grads[i] = S(sum);
    }
  }
  double total = 0.0;
  for (double l : loss_partials_) total += l;
  return total / (2.0 * batch_ * T);
}

#define MESALAB_INSTANTIATE(S)                                                             \
  template void LinearStudent::init_params<S>(S*, double, uint64_t, uint64_t) const;       \
  template void LinearStudent::write_into<S>(const Transformer&, int, const S*, S*) const; \
  template void LinearStudent::read_from<S>(const Transformer&, int, const S*, S*) const;  \
  template class StudentRunner<S>;
MESALAB_INSTANTIATE(float)
MESALAB_INSTANTIATE(double)
#undef MESALAB_INSTANTIATE

}  // namespace mesalab
