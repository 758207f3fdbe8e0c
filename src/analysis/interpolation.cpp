#include "analysis/interpolation.hpp"

#include <cmath>
#include <limits>

#include "core/eigen_maps.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "train/evaluation.hpp"
#include "train/trainer.hpp"

namespace mesalab {

namespace fs = std::filesystem;

ModelConfig interpolated_config(const ModelConfig& trained) {
  ModelConfig c = trained;
  c.key_size = trained.key_size + trained.embed_dim;
  c.detect_anomaly = false;
  return c;
}

// Per layer and head h (columns hK.. of Wq, Wk, Wv, rows hK.. of Wo), the trained head fills
// the first K columns of the interpolated head's K + E, RevAlg-d's head the last E:
//   Wq* = [(1 - a) Wq_h, a Q'_h], Wk* = [Wk_h, K'_h], Wv* = [Wv_h, V'_h], P* = [(1 - a) P_h; a
//   P'_h].
template <class S>
std::vector<S> interpolated_params(const Transformer& trained, const S* trained_params,
                                   const Transformer& revalg, const double* revalg_params,
                                   const Transformer& interpolated, double alpha) {
  const ModelConfig &t = trained.config(), &r = revalg.config(), &m = interpolated.config();
  const int E = t.embed_dim, H = t.heads, K = t.key_size, L = t.layers();
  if (!(alpha >= 0.0 && alpha <= 1.0))
    fail("interpolation: alpha must be in [0, 1], got {}", alpha);
  if (r.key_size != E || r.heads != H || r.layers() != L || m.key_size != K + E || m.heads != H ||
      m.layers() != L || r.embed_dim != E || m.embed_dim != E)
    fail(
        "interpolation: the models must be a trained one, its revalg_d_config and its "
        "interpolated_config");
  if (trained.num_params() != size_t(L) * 4 * E * H * K)
    fail("interpolation: the trained model has parameters besides its attention kernels");
  const int HK = H * K, HE = H * E, HM = H * (K + E);
  std::vector<S> out(interpolated.num_params(), S(0));
  const S keep = S(1.0 - alpha), mix = S(alpha);
  for (int l = 0; l < L; ++l) {
    const LayerOffsets &to = trained.layer(l), &ro = revalg.layer(l), &mo = interpolated.layer(l);
    for (int h = 0; h < H; ++h) {
      const int tc = h * K, rc = h * E, mc = h * (K + E);
      // Query, key and value columns: (E, H x width) row-major.
      auto copy_columns = [&](size_t m_off, size_t t_off, size_t r_off, S t_scale, S r_scale) {
        auto dst = mat(out.data() + m_off, E, HM);
        const auto src_t = mat(trained_params + t_off, E, HK);
        const auto src_r = mat(revalg_params + r_off, E, HE);
        dst.block(0, mc, E, K) = t_scale * src_t.block(0, tc, E, K);
        dst.block(0, mc + K, E, E) = r_scale * src_r.block(0, rc, E, E).template cast<S>();
      };
      copy_columns(mo.q, to.q, ro.q, keep, mix);
      copy_columns(mo.k, to.k, ro.k, S(1), S(1));
      copy_columns(mo.v, to.v, ro.v, S(1), S(1));
      auto wo = mat(out.data() + mo.o, HM, E);
      wo.block(mc, 0, K, E) = keep * mat(trained_params + to.o, HK, E).block(tc, 0, K, E);
      wo.block(mc + K, 0, E, E) =
          mix * mat(revalg_params + ro.o, HE, E).block(rc, 0, E, E).template cast<S>();
    }
  }
  return out;
}

template std::vector<float> interpolated_params(const Transformer&, const float*,
                                                const Transformer&, const double*,
                                                const Transformer&, double);
template std::vector<double> interpolated_params(const Transformer&, const double*,
                                                 const Transformer&, const double*,
                                                 const Transformer&, double);

InterpolationResult interpolate_run(const RunConfig& cfg, const std::vector<float>& final_params,
                                    const std::vector<std::pair<int64_t, double>>& recorded,
                                    const fs::path& scratch_dir, double alpha, bool progress) {
  if (!(alpha >= 0.0 && alpha <= 1.0))
    fail("interpolation: alpha must be in [0, 1], got {}", alpha);
  const Transformer model(cfg.model);
  const RevAlgDComparison revalg_d = compare_revalg_d(cfg, model, final_params);
  const Transformer revalg(revalg_d_config(cfg.model)), mixed(interpolated_config(cfg.model));
  const std::vector<double> revalg_params = revalg_d_params(revalg, revalg_d.layers);
  const int T = cfg.data.seq_len, B = cfg.train.test_batch_size;
  const std::vector<TokenBatch> test_set =
      make_test_set(cfg, cfg.train.seed, cfg.train.test_batches, B);
  BatchRunner<float> mixed_runner(mixed, B, T, /*forward_only=*/true);

  InterpolationResult result;
  result.alpha = alpha;
  result.revalg_d = curve_mean(revalg_d.curves.at(1).second);
  TrainOptions options;
  options.force = true;
  options.progress = progress;
  options.on_evaluation = [&](int64_t step, const std::vector<float>& params, double loss) {
    const std::vector<float> p =
        interpolated_params(model, params.data(), revalg, revalg_params.data(), mixed, alpha);
    InterpolationPoint point{step, loss,
                             curve_mean(per_step_loss(mixed_runner, p.data(), test_set)),
                             std::numeric_limits<double>::quiet_NaN()};
    for (const auto& [s, l] : recorded)
      if (s == step) {
        point.recorded = l;
        result.replay_max_difference = std::max(result.replay_max_difference, std::abs(l - loss));
      }
    result.points.push_back(point);
  };
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{scratch_dir};
  train(cfg, scratch_dir, options);
  return result;
}

nlohmann::json interpolation_json(const InterpolationResult& r) {
  auto finite = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  nlohmann::json steps = nlohmann::json::array(), model = steps, mixed = steps, recorded = steps;
  for (const InterpolationPoint& p : r.points) {
    steps.push_back(p.step);
    model.push_back(finite(p.model));
    mixed.push_back(finite(p.interpolated));
    recorded.push_back(finite(p.recorded));
  }
  return {{"alpha", r.alpha},
          {"revalg_d", finite(r.revalg_d)},
          {"replay_max_difference", r.replay_max_difference},
          {"steps", steps},
          {"model", model},
          {"interpolated", mixed},
          {"recorded", recorded}};
}

InterpolationResult interpolation_from_json(const nlohmann::json& j) {
  auto number = [](const nlohmann::json& v) {
    return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
  };
  try {
    InterpolationResult r;
    r.alpha = j.at("alpha").get<double>();
    r.revalg_d = number(j.at("revalg_d"));
    r.replay_max_difference = j.at("replay_max_difference").get<double>();
    const auto &steps = j.at("steps"), &model = j.at("model"), &mixed = j.at("interpolated"),
               &recorded = j.at("recorded");
    if (model.size() != steps.size() || mixed.size() != steps.size() ||
        recorded.size() != steps.size())
      fail("arrays of different lengths");
    for (size_t i = 0; i < steps.size(); ++i)
      r.points.push_back(
          {steps[i].get<int64_t>(), number(model[i]), number(mixed[i]), number(recorded[i])});
    return r;
  } catch (const nlohmann::json::exception& e) {
    fail("interpolation result: {}", e.what());
  }
}

}  // namespace mesalab
