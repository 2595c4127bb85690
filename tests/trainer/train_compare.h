// The checks of ../shared/README.md for one training iteration against a reference in the
// fixture format (losses, trained weights, EMA weights), shared by test_train_fixture and
// test_train_distributed. Uses GoogleTest's EXPECT_* macros.
#pragma once

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "model/safetensors.h"
#include "trainer/solver.h"

namespace starganv2::train_compare {

// ../shared/README.md, "training iteration".
constexpr double kLossRelTolerance = 1e-3;
constexpr double kTight = 1e-5, kTightShare = 0.98;
constexpr double kLoose = 5e-5, kLooseShare = 0.995;
constexpr double kMaxAbs = 1e-3;
constexpr double kMinCosine = 0.98;

struct WeightStats {
  int64_t elements = 0, within_tight = 0, within_loose = 0;
  double max_abs = 0;
  std::string max_name;
  double min_cos = 2;
  std::string min_cos_name;
  // The same cosine with each tensor's most disagreeing element left out (the one whose
  // u_ours * u_ref is lowest), and how many tensors fall below kMinCosine without that. Adam with
  // beta1 = 0 moves each element by about lr * sign(grad) on its first step, so one element whose
  // gradient sits at float32's noise floor and flips its sign changes a 32-element tensor's
  // cosine by ~0.03 on its own; this tells that apart from a tensor moving the wrong way.
  double min_cos_but_one = 2;
  std::string min_cos_but_one_name;
  int below_min_cos = 0;
  int tensors = 0, cos_tensors = 0;
  // Over all weight tensors together: sum u_ours.u_ref, |u_ours|^2, |u_ref|^2.
  double dot = 0, norm2_ours = 0, norm2_ref = 0;
};

inline const at::Tensor& tensor(const SafetensorsFile& f, const std::string& name) {
  const auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw std::runtime_error("fixture has no tensor " + name);
  return it->second;
}

inline bool has_prefix(const SafetensorsFile& f, const std::string& prefix) {
  const auto it = f.tensors.lower_bound(prefix);
  return it != f.tensors.end() && it->first.rfind(prefix, 0) == 0;
}

// cos(ours, ref) of two updates: 1 when the reference did not move (nothing to point along), 0
// when only ours did not.
inline double update_cosine(const at::Tensor& ours, const at::Tensor& ref) {
  const double n_ours = ours.norm().item<double>(), n_ref = ref.norm().item<double>();
  if (n_ref == 0) return 1.0;
  return n_ours == 0 ? 0.0 : (ours * ref).sum().item<double>() / (n_ours * n_ref);
}

// Compares a network's parameters with "<kind>.<net>.*" and its update (after - init) with the
// reference's update.
inline void compare_net(const SafetensorsFile& f, const std::string& kind, const std::string& net, torch::nn::Module& module,
                 WeightStats& s) {
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    const std::string name = net + "." + p.key();
    const at::Tensor ours = p.value().detach().to(at::kDouble);
    const at::Tensor ref = tensor(f, kind + "." + name).to(at::kDouble);
    const at::Tensor init = tensor(f, "init." + name).to(at::kDouble);
    EXPECT_EQ(ours.sizes(), ref.sizes()) << name;
    if (ours.sizes() != ref.sizes()) continue;
    const at::Tensor diff = (ours - ref).abs();
    ++s.tensors;
    s.elements += diff.numel();
    s.within_tight += (diff <= kTight).sum().item<int64_t>();
    s.within_loose += (diff <= kLoose).sum().item<int64_t>();
    const double mx = diff.numel() ? diff.max().item<double>() : 0.0;
    if (!(mx <= s.max_abs)) {  // NaN counts as worst
      s.max_abs = std::isnan(mx) ? 1e30 : mx;
      s.max_name = kind + "." + name;
    }
    // Conv biases that feed an instance norm get a zero gradient in exact arithmetic, so their
    // update is rounding noise; the README leaves all biases out of the direction check.
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) continue;
    const at::Tensor u_ours = (ours - init).flatten(), u_ref = (ref - init).flatten();
    const double n_ref = u_ref.norm().item<double>(), n_ours = u_ours.norm().item<double>();
    s.dot += (u_ours * u_ref).sum().item<double>();
    s.norm2_ours += n_ours * n_ours;
    s.norm2_ref += n_ref * n_ref;
    if (n_ref == 0) {
      EXPECT_EQ(n_ours, 0.0) << name << ": the reference did not change it, ours did";
      continue;
    }
    const double cos = update_cosine(u_ours, u_ref);
    ++s.cos_tensors;
    if (!(cos >= s.min_cos)) {
      s.min_cos = std::isnan(cos) ? -2 : cos;
      s.min_cos_name = kind + "." + name;
    }
    if (!(cos >= kMinCosine)) ++s.below_min_cos;
    const int64_t worst = (u_ours * u_ref).argmin().item<int64_t>();
    const at::Tensor keep = at::ones_like(u_ref, at::kBool).index_fill_(0, at::tensor({worst}), false);
    const double cos_but_one = update_cosine(u_ours.masked_select(keep), u_ref.masked_select(keep));
    if (!(cos_but_one >= s.min_cos_but_one)) {
      s.min_cos_but_one = std::isnan(cos_but_one) ? -2 : cos_but_one;
      s.min_cos_but_one_name = kind + "." + name;
    }
  }
}

// `per_tensor_cosine`: the README's direction check per weight tensor. The EMA moves each weight
// by only (1 - beta) of the trained update, which float32 resolves to a few per cent, so for the
// EMA the direction and size are checked over all weight tensors together; element-wise
// tolerances alone could not tell a missing or wrong average (it is ~1e-7 off).
// `but_one`: for a caller that states why, the per-tensor check at 0.98 leaves out each tensor's
// most disagreeing element (see WeightStats), and at most one tensor may need that.
inline void report_and_check(const std::string& what, const WeightStats& s, bool per_tensor_cosine,
                             bool but_one = false) {
  const double tight = static_cast<double>(s.within_tight) / static_cast<double>(std::max<int64_t>(1, s.elements));
  const double loose = static_cast<double>(s.within_loose) / static_cast<double>(std::max<int64_t>(1, s.elements));
  const double all_cos = s.dot / std::sqrt(s.norm2_ours * s.norm2_ref);
  const double ratio = std::sqrt(s.norm2_ours / s.norm2_ref);
  std::printf("  %-10s %d tensors, %lld elements: %.3f%% within %.0e (need %.1f%%), %.3f%% within %.0e (need %.1f%%)\n",
              what.c_str(), s.tensors, static_cast<long long>(s.elements), 100 * tight, kTight, 100 * kTightShare,
              100 * loose, kLoose, 100 * kLooseShare);
  std::printf("  %-10s max |diff| %.3g at %s (limit %.0e)\n", "", s.max_abs, s.max_name.c_str(), kMaxAbs);
  std::printf("  %-10s update cosine: min %.5f at %s over %d weight tensors%s; all together %.5f, |ours|/|ref| %.4f\n",
              "", s.min_cos, s.min_cos_name.c_str(), s.cos_tensors,
              per_tensor_cosine && !but_one ? " (need 0.98)" : " (not checked)", all_cos, ratio);
  if (per_tensor_cosine && but_one)
    std::printf("  %-10s each tensor but its most disagreeing element: min %.5f at %s (need 0.98); %d tensor(s) "
                "below 0.98 with it (at most 1)\n",
                "", s.min_cos_but_one, s.min_cos_but_one_name.c_str(), s.below_min_cos);
  std::fflush(stdout);
  EXPECT_GT(s.elements, 0) << what;
  EXPECT_GE(tight, kTightShare) << what;
  EXPECT_GE(loose, kLooseShare) << what;
  EXPECT_LE(s.max_abs, kMaxAbs) << what << " worst at " << s.max_name;
  if (per_tensor_cosine && !but_one) {
    EXPECT_GE(s.min_cos, kMinCosine) << what << " worst at " << s.min_cos_name;
  }
  if (per_tensor_cosine && but_one) {
    EXPECT_GE(s.min_cos_but_one, kMinCosine) << what << " worst at " << s.min_cos_but_one_name;
    EXPECT_LE(s.below_min_cos, 1) << what;
  }
  EXPECT_GE(all_cos, kMinCosine) << what;
  EXPECT_NEAR(ratio, 1.0, 0.05) << what << ": the updates differ in size";
}

// Hyper-parameters from a fixture's metadata (config, train) and its batch size.
inline TrainOptions options_from_fixture(const SafetensorsFile& f) {
  const auto train = nlohmann::json::parse(f.metadata.at("train"));
  TrainOptions o;
  o.model = ModelConfig::from_json(f.metadata.at("config"));
  o.batch_size = tensor(f, "io.x_real").size(0);
  o.lambda_reg = train.at("lambda_reg").get<double>();
  o.lambda_sty = train.at("lambda_sty").get<double>();
  o.lambda_ds = train.at("lambda_ds").get<double>();
  o.lambda_cyc = train.at("lambda_cyc").get<double>();
  o.ds_iter = train.at("ds_iter").get<int64_t>();
  o.lr = train.at("lr").get<double>();
  o.f_lr = train.at("f_lr").get<double>();
  o.beta1 = train.at("beta1").get<double>();
  o.beta2 = train.at("beta2").get<double>();
  o.weight_decay = train.at("weight_decay").get<double>();
  o.ema_beta = train.value("ema_beta", 0.999);
  return o;
}

// Checks 18 loss values (StepLosses::named() order and names) against loss.* of the fixture.
inline void check_losses(const SafetensorsFile& f, const std::vector<std::pair<std::string, double>>& named) {
  double worst_rel = 0;
  std::string worst_name;
  int checked = 0;
  for (const auto& [name, value] : named) {
    const auto slash = name.find('/'), under = name.find('_');
    const std::string key = "loss." + name.substr(0, slash) + "_" + name.substr(slash + 1, under - slash - 1) + "." +
                            name.substr(under + 1);
    if (!f.tensors.count(key)) continue;
    const double ref = tensor(f, key).to(at::kDouble).item<double>();
    const double rel = std::abs(value - ref) / std::max(std::abs(ref), 1e-12);
    std::printf("  %-22s ours %.7f  reference %.7f  rel %.2e\n", key.c_str(), value, ref, rel);
    EXPECT_LE(rel, kLossRelTolerance) << key << ": ours " << value << ", reference " << ref;
    if (!(rel <= worst_rel)) {
      worst_rel = rel;
      worst_name = key;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 18) << "the fixture should hold 18 loss terms";
  std::printf("  worst loss: %s rel %.2e (limit %.0e)\n", worst_name.c_str(), worst_rel, kLossRelTolerance);
}

}  // namespace starganv2::train_compare
