#include "analysis/sensitivity.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "model/batch_runner.hpp"
#include "model/model_prefix.hpp"
#include "train/evaluation.hpp"

namespace mesalab {

std::vector<int> sensitivity_targets(int seq_len) {
  if (seq_len < 2) fail("sensitivity needs data.seq_len >= 2 (got {})", seq_len);
  return {1, (seq_len - 1) / 2, seq_len - 1};
}

double SensitivityTable::at_lag(size_t i, int lag) const {
  const int k = targets.at(i);
  if (lag < 0 || lag > k) return std::numeric_limits<double>::quiet_NaN();
  return values.at(i).at(size_t(k - lag));
}

double SensitivityTable::previous_to_old_ratio(size_t i) const {
  const int k = targets.at(i);
  if (k < 5) return std::numeric_limits<double>::quiet_NaN();
  double old = 0.0;
  for (int j = 0; j <= k - 5; ++j) old += values[i][size_t(j)];
  return at_lag(i, 1) / (old / double(k - 4));
}

template <class S>
FirstBlockSensitivity<S>::FirstBlockSensitivity(const Transformer& model, int batch, int seq_len)
    : model_(model),
      block_(prefix_model(model, 1)),
      batch_(batch),
      seq_len_(seq_len),
      targets_(sensitivity_targets(seq_len)) {
  if (batch < 1) fail("sensitivity needs a batch of >= 1 sequences (got {})", batch);
  const size_t E = size_t(model.config().embed_dim), W = size_t(model.config().token_dim());
  const int chunk = std::min(batch, kChunkSequences);
  for (int k : targets_) cut_tokens_.emplace_back(size_t(batch) * (k + 1) * W);
  const int threads = std::max(1, omp_get_max_threads());
  threads_.resize(size_t(threads));
  for (ThreadBuffers& t : threads_) {
    for (int k : targets_) t.workspaces.push_back(block_.make_workspace<S>(chunk, k + 1));
    t.grads.resize(block_.num_params());
    t.d_stream.assign(size_t(chunk) * seq_len * E, S(0));
    t.grad_tokens.resize(size_t(chunk) * seq_len * W);
  }
}

// Per target k, with u' = u[:, 0..k] and x_1 = FirstBlock(u'):
//   norms[l][j] = sum_b || d x_1[b, k, l] / d u'[b, j, :] ||_2   (one backward per channel l
//   and chunk of sequences, seeded with d x_1 = e_(k, l) in every sequence of the chunk),
//   S_k(j) = 1/E sum_l 1/B norms[l][j].
// Work items (chunk c, channel l) run in parallel; a thread forwards a chunk once and runs
// its channels' backwards from that forward. Items write their own slots, summed in order.
template <class S>
SensitivityTable FirstBlockSensitivity<S>::compute(const S* params, const S* tokens) {
  if (size_t(omp_get_max_threads()) > threads_.size())
    fail_runtime("sensitivity: {} threads, but buffers for {} were made at construction",
                 omp_get_max_threads(), threads_.size());
  const std::vector<S> block_params = prefix_params(model_, block_, params);
  const int B = batch_, T = seq_len_, E = block_.config().embed_dim;
  const int W = block_.config().token_dim();
  const int chunks = (B + kChunkSequences - 1) / kChunkSequences;
  SensitivityTable table{B, targets_, {}};
  for (ThreadBuffers& t : threads_) t.forwarded = -1;
  for (size_t i = 0; i < targets_.size(); ++i) {
    const int k = targets_[i], Tk = k + 1;
    S* cut = cut_tokens_[i].data();
    for (int b = 0; b < B; ++b)
      std::copy_n(tokens + size_t(b) * T * W, size_t(Tk) * W, cut + size_t(b) * Tk * W);
    // norms[c * E + l]: (Tk) sums over chunk c's sequences for channel l.
    std::vector<std::vector<double>> norms(size_t(chunks) * E, std::vector<double>(size_t(Tk)));
    parallel_for(chunks * E, [&](int item) {
      const int c = item / E, l = item % E;
      const int first = c * kChunkSequences, count = std::min(kChunkSequences, B - first);
      const S* chunk_tokens = cut + size_t(first) * Tk * W;
      ThreadBuffers& t = threads_[size_t(omp_get_thread_num())];
      Workspace<S>& ws = t.workspaces[i];
      const int forward_id = int(i) * chunks + c;
      if (t.forwarded != forward_id) {
        block_.forward(block_params.data(), chunk_tokens, count, ws);
        t.forwarded = forward_id;
      }
      // d_stream (count, Tk, E): 1 at (b, k, l) for every b, zero elsewhere.
      for (int b = 0; b < count; ++b) t.d_stream[(size_t(b) * Tk + k) * E + l] = S(1);
      block_.backward_from_stream(block_params.data(), chunk_tokens, count, ws, t.d_stream.data(),
                                  t.grads.data(), t.grad_tokens.data());
      for (int b = 0; b < count; ++b) t.d_stream[(size_t(b) * Tk + k) * E + l] = S(0);
      std::vector<double>& out = norms[size_t(item)];
      for (int b = 0; b < count; ++b)
        for (int j = 0; j < Tk; ++j) {
          const S* g = t.grad_tokens.data() + (size_t(b) * Tk + j) * W;
          double sq = 0.0;
          for (int w = 0; w < W; ++w) sq += double(g[w]) * double(g[w]);
          out[size_t(j)] += std::sqrt(sq);
        }
    });
    std::vector<double> mean(size_t(Tk), 0.0);
    for (const std::vector<double>& item : norms)
      for (int j = 0; j < Tk; ++j) mean[size_t(j)] += item[size_t(j)];
    for (double& v : mean) v /= double(B) * E;
    table.values.push_back(std::move(mean));
  }
  // The parameter gradients of the backwards are not wanted; keep them from growing.
  for (ThreadBuffers& t : threads_) std::fill(t.grads.begin(), t.grads.end(), S(0));
  return table;
}

template <class S>
SensitivityTable first_block_sensitivity(const Transformer& model, const S* params, const S* tokens,
                                         int batch, int seq_len) {
  return FirstBlockSensitivity<S>(model, batch, seq_len).compute(params, tokens);
}

TokenBatch sensitivity_batch(const RunConfig& cfg, int batch) {
  return make_token_batch(cfg, cfg.train.seed, RngPurpose::TestData, 0, batch);
}

nlohmann::json sensitivity_record_json(const SensitivityRecord& record) {
  return {{"step", record.step},
          {"batch", record.table.batch},
          {"targets", record.table.targets},
          {"sensitivity", record.table.values}};
}

SensitivityRecord parse_sensitivity_record(const nlohmann::json& j, const std::string& source) {
  SensitivityRecord r;
  try {
    r.step = j.at("step").get<int64_t>();
    r.table.batch = j.at("batch").get<int>();
    r.table.targets = j.at("targets").get<std::vector<int>>();
    r.table.values = j.at("sensitivity").get<std::vector<std::vector<double>>>();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not a sensitivity record ({})", source, e.what());
  }
  if (r.table.values.size() != r.table.targets.size())
    fail("{}: {} targets but {} rows of sensitivities", source, r.table.targets.size(),
         r.table.values.size());
  for (size_t i = 0; i < r.table.targets.size(); ++i)
    if (r.table.targets[i] < 0 || r.table.values[i].size() != size_t(r.table.targets[i]) + 1)
      fail("{}: target {} needs {} positions, the record has {}", source, r.table.targets[i],
           r.table.targets[i] + 1, r.table.values[i].size());
  return r;
}

std::vector<SensitivityRecord> parse_sensitivity_jsonl(const std::string& text,
                                                       const std::string& source) {
  std::vector<SensitivityRecord> records;
  std::istringstream in(text);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + ":" + std::to_string(number);
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) fail("{}: not valid JSON", where);
    records.push_back(parse_sensitivity_record(j, where));
  }
  return records;
}

template class FirstBlockSensitivity<float>;
template class FirstBlockSensitivity<double>;
template SensitivityTable first_block_sensitivity<float>(const Transformer&, const float*,
                                                         const float*, int, int);
template SensitivityTable first_block_sensitivity<double>(const Transformer&, const double*,
                                                          const double*, int, int);

}  // namespace mesalab
