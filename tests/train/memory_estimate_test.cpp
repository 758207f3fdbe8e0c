// The memory estimate: workspace_sizes is what make_workspace allocates, the estimate grows
// with the batch, and an impossible run is refused with the estimate and what is available.
#include "train/memory_estimate.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "model/transformer.hpp"

namespace mesalab {
namespace {

template <class S>
size_t allocated(const Workspace<S>& w) {
  return w.x.size() + w.y.size() + w.attn_in.size() + w.mid.size() + w.mlp_in.size() +
         w.norm_cache.size() + w.mlp_cache.size() + w.positions.size() + w.out.size() +
         w.d_branch.size() + w.qkv.size() + w.mixed.size() + w.cache.size() + w.d_pred.size() +
         w.dx.size() + w.dmixed.size() + w.dqkv.size() + w.scratch.size() + w.lambdas.size() +
         w.d_lambdas.size();
}

TEST(MemoryEstimate, WorkspaceSizesAreWhatMakeWorkspaceAllocates) {
  for (const std::vector<std::string>& sets :
       {std::vector<std::string>{},
        {"model.layer=softmax", "model.layers=3"},
        {"model.layer=mesa", "model.layers=1"},
        {"data.tokens=raw", "model.embed_dim=16", "model.layer_norm=true", "model.mlp=true",
         "model.positional_codes=true"}}) {
    const RunConfig cfg = make_run_config(nullptr, sets);
    const Transformer model(cfg.model);
    const auto ws = model.make_workspace<float>(8, 13);
    EXPECT_EQ(model.workspace_sizes(8, 13).total(), allocated(ws)) << testing::PrintToString(sets);
    const auto forward_ws = model.make_workspace<float>(8, 13, /*forward_only=*/true);
    EXPECT_EQ(model.workspace_sizes(8, 13, true).total(), allocated(forward_ws));
    EXPECT_LT(allocated(forward_ws), allocated(ws));
  }
}

TEST(MemoryEstimate, GrowsWithTheBatchAndRefusesTheImpossible) {
  const RunConfig small = make_run_config(nullptr, {});
  const MemoryEstimate e = estimate_training_memory(small, 2);
  EXPECT_GT(e.bytes, 5e6) << e.breakdown;  // the test set alone: 10 x 256 x 50 x 50 floats
  EXPECT_LT(e.bytes, 2e9) << e.breakdown;
  const RunConfig bigger = make_run_config(nullptr, {"train.batch_size=1024"});
  EXPECT_GT(estimate_training_memory(bigger, 2).bytes, e.bytes);
  EXPECT_NO_THROW(check_training_memory(small, 2, 24.0 * (1u << 30)));
  EXPECT_NO_THROW(check_training_memory(small, 2, 0.0)) << "unknown availability: no check";

  const RunConfig huge =
      make_run_config(nullptr, {"data.seq_len=100000", "train.batch_size=1000000"});
  try {
    check_training_memory(huge, 2, 24.0 * (1u << 30));
    ADD_FAILURE() << "an impossible run passed";
  } catch (const Error& err) {
    const std::string what = err.what();
    EXPECT_NE(what.find("needs about"), std::string::npos) << what;
    EXPECT_NE(what.find("24.0 GiB is available"), std::string::npos) << what;
    EXPECT_NE(what.find("train.batch_size"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace mesalab
