#pragma once
// Linearization of softmax layers (SPEC_EXPERIMENTS 6, the official Linearizer): how close
// to linear attention is each softmax layer of a trained model? For each chosen layer i a
// fresh linear student (analysis/linear_student.hpp, shaped like the layer) is fitted to map
// the layer's attention input a_i (ws.layer(i).attn_in) to its attention output before the
// residual, mixed_i Wo_i, both read off the frozen model's forward on fresh sequences. The
// student then replaces layer i (mixers[i] = Linear with the student's q, k, (q_pos, k_pos,)
// v, o), the other layers unchanged, and
//   ratio_i = test_loss(spliced) / test_loss(original)
// on the run's fixed test set (the mean per-step loss `mesalab eval` reports; the official
// code scores 10 fresh batches of 64, the same for both models). A layer that is linear
// attention already gives ratio 1. The target is always the attention output: with an MLP
// the official attention_outputs would be the MLP's output instead, which no attention
// layer replaces (the official linearized models have no MLP).
// Fitting as the official code: 64 fresh sequences per step (RngPurpose::Linearization,
// step k), loss sum (y - target)^2 / (2 B T), element-wise clip(1) + AdamW at a constant lr
// 1e-3 with weight decay 0.05, 100 steps per epoch for linear_train_len = 150 epochs, init
// N(0, model.init_std^2) (the model's initializer). One difference: every layer's student
// sees the same batches (one frozen forward per step serves all of them; the official code
// draws each student's batches from its own key, the same distribution). Per step, one
// parallel loop over chunks of kChunkSequences sequences runs the frozen model and every
// student on the chunk; gradients are summed in chunk order (bit-identical for any thread
// count), and one AdamW loop updates all students' parameters, kept in one buffer.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/linear_student.hpp"
#include "train/run_config.hpp"

namespace mesalab {

// Official: 100 steps per epoch x experiment.linear_train_len = 150 (configs/config.py).
inline constexpr int64_t kOfficialLinearizationSteps = 15000;

struct LinearizeOptions {
  std::vector<int> layers;  // empty: every softmax layer of the model
  int64_t steps = kOfficialLinearizationSteps;
  double lr = 1e-3;  // official experiment.linear_lr
  int batch = 64;    // official LinearizationHelper.linearization_batch_size
  double weight_decay = 0.05;
  double grad_clip = 1.0;
  uint64_t seed = 0;           // of the students' batches and initial weights
  int fit_test_batches = 10;   // held-out batches (of `batch`) scoring the fitted students
  int64_t record_every = 100;  // fit_curve: mean training loss over each block of steps
  // After each step: the step (1-based) and the students' training loss, mean over layers.
  std::function<void(int64_t step, double loss)> on_step;
  void validate() const;  // throws Error naming the option
};

struct LayerLinearization {
  int layer = 0;
  MixerKind kind = MixerKind::Softmax;
  std::vector<double> fit_curve;  // mean training loss per record_every steps
  double fit_loss = 0.0;          // the fitted student's loss on the held-out batches
  double zero_loss = 0.0;         // the zero student's there: sum target^2 / (2 B T)
  double test_loss = 0.0;         // the spliced model's, on the run's test set
  double ratio = 0.0;             // test_loss / LinearizationResult::original_test_loss
  std::vector<float> student;     // the fitted student's parameters (LinearStudent layout)
  double relative_fit_loss() const { return zero_loss > 0 ? fit_loss / zero_loss : 0.0; }
};

struct LinearizationResult {
  int64_t steps = 0, record_every = 0;  // of the fit (fit_curve's point i: steps up to
                                        // min((i + 1) record_every, steps))
  double original_test_loss = 0.0;
  std::vector<LayerLinearization> layers;
};

// The layers to fit: `requested` checked against the model (in range, no repeats), or, if
// empty, every softmax layer; a model without one is an Error naming its layer kinds.
std::vector<int> layers_to_linearize(const ModelConfig& model, const std::vector<int>& requested);

// The model with layer `layer` replaced by the student: mixers[layer] = Linear, every other
// tensor copied by name, the layer's attention tensors the student's.
struct SplicedModel {
  Transformer model;
  std::vector<float> params;
};
SplicedModel splice_student(const Transformer& model, const std::vector<float>& params, int layer,
                            const LinearStudent& student, const float* student_params);

// Mean per-step test loss on the run's fixed test set (train.seed, test_batches x
// test_batch_size), as `mesalab eval`.
double run_test_loss(const Transformer& model, const std::vector<float>& params,
                     const RunConfig& cfg);

// Fits the students and scores the spliced models. params stay untouched.
LinearizationResult linearize(const Transformer& model, const std::vector<float>& params,
                              const RunConfig& cfg, const LinearizeOptions& options);

// {"settings": {...}, "original_test_loss", "median_ratio", "layers": [{"layer", "kind",
// "ratio", "test_loss", "fit_loss", "zero_loss", "relative_fit_loss", "fit_curve"}]}; the
// students' weights are left out.
nlohmann::json linearization_settings_json(const LinearizeOptions& options,
                                           const std::vector<int>& layers);
nlohmann::json linearization_json(const LinearizationResult& result,
                                  const LinearizeOptions& options);

// The median of the layers' ratios (the mean of the middle two for an even count).
double median_ratio(const LinearizationResult& result);

}  // namespace mesalab
