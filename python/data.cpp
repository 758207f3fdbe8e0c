// Sequences and tokens for any data kind and token format, as the training and test batches.
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "convert.hpp"
#include "data/sequences.hpp"
#include "data/tokens.hpp"
#include "train/evaluation.hpp"

namespace mesalab::python {

namespace {

py::dict sequences(const py::object& config, int batch, std::optional<uint64_t> seed, uint64_t step,
                   const std::string& purpose) {
  const RunConfig cfg = run_config_from(config);
  if (batch < 1) fail("batch must be >= 1, got {}", batch);
  const RngPurpose p = parse_purpose(purpose);
  SequenceBatch s;
  {
    py::gil_scoped_release release;
    s = sample_sequences(cfg.data, seed.value_or(cfg.train.seed), p, step, batch);
  }
  py::dict out;
  out["observed"] = to_numpy(std::move(s.observed), {s.batch, s.seq_len + 1, s.obs_dim});
  out["hidden"] = to_numpy(std::move(s.hidden), {s.batch, s.seq_len + 1, s.dim});
  return out;
}

py::dict token_batch(const py::object& config, int batch, std::optional<uint64_t> seed,
                     uint64_t step, const std::string& purpose) {
  const RunConfig cfg = run_config_from(config);
  if (batch < 1) fail("batch must be >= 1, got {}", batch);
  const RngPurpose p = parse_purpose(purpose);
  TokenBatch b;
  {
    py::gil_scoped_release release;
    b = make_token_batch(cfg, seed.value_or(cfg.train.seed), p, step, batch);
  }
  py::dict out;
  out["tokens"] = to_numpy(std::move(b.tokens), {b.batch, b.seq_len, b.width});
  out["labels"] = to_numpy(std::move(b.labels), {b.batch, b.seq_len, b.dim});
  out["states"] = to_numpy(std::move(b.states), {b.batch, b.seq_len + 1, b.dim});
  return out;
}

py::dict build_tokens_from(const CArray<double>& states, const std::string& format,
                           std::optional<int> width) {
  require_ndim(states, 3, "states");
  const TokenFormat f = parse_token_format(format);
  const int batch = int(states.shape(0)), seq_len = int(states.shape(1)) - 1;
  const int dim = int(states.shape(2));
  if (seq_len < 1)
    fail("states must hold T + 1 >= 2 states per sequence, got {}", shape_string(states));
  const int w = width.value_or(is_constructed(f) ? 4 * dim : dim);
  std::vector<float> tokens(size_t(batch) * seq_len * w), labels(size_t(batch) * seq_len * dim);
  const double* s = states.data();
  {
    py::gil_scoped_release release;
    build_tokens(f, s, batch, seq_len, dim, w, tokens.data(), labels.data());
  }
  py::dict out;
  out["tokens"] = to_numpy(std::move(tokens), {batch, seq_len, w});
  out["labels"] = to_numpy(std::move(labels), {batch, seq_len, dim});
  return out;
}

}  // namespace

void bind_data(py::module_& m) {
  m.def("sequences", &sequences, py::arg("config") = py::none(), py::arg("batch") = 256,
        py::arg("seed") = py::none(), py::arg("step") = 0, py::arg("purpose") = "test",
        "the batch of sequences drawn for (seed, purpose, step) from the config's data kind: "
        "{'observed': (B, T+1, O), 'hidden': (B, T+1, D)} float64 (observed = hidden without an "
        "observation model). seed: train.seed by default; purpose: train, test, tuning, probe. "
        "purpose='test', step=i is batch i of the run's fixed test set.");
  m.def("tokens", &token_batch, py::arg("config") = py::none(), py::arg("batch") = 256,
        py::arg("seed") = py::none(), py::arg("step") = 0, py::arg("purpose") = "test",
        "the same batch as model inputs in the config's token format: {'tokens': (B, T, width), "
        "'labels': (B, T, O) float32, 'states': (B, T+1, O) float64}, bit for bit what training "
        "and evaluation feed the model");
  m.def("build_tokens", &build_tokens_from, py::arg("states"), py::arg("format") = "constructed",
        py::arg("width") = py::none(),
        "tokens of a format (constructed, constructed_masked, raw, delay) from states (B, T+1, "
        "D): {'tokens': (B, T, width), 'labels': (B, T, D)} float32; width: 4 D for the "
        "constructed formats, D for raw, >= D (the model's embed_dim) for delay");
}

}  // namespace mesalab::python
