#include "options.h"

#include "diff_augment.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>

namespace starganv2 {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("invalid training options: " + what);
}

std::string num(double v) { return nlohmann::json(v).dump(); }

}  // namespace

void TrainOptions::validate() const {
  model.validate();
  // 4096 crops of 256 px are 3 GB of input alone; a larger batch is a typo or a hostile file.
  require(batch_size >= 1 && batch_size <= 4096, "batch_size must be in [1, 4096], got " + std::to_string(batch_size));
  require(total_iters >= 0, "total_iters must be >= 0, got " + std::to_string(total_iters));
  require(ds_iter >= 1, "ds_iter must be >= 1, got " + std::to_string(ds_iter));
  for (auto [name, v] : {std::pair{"lambda_reg", lambda_reg}, std::pair{"lambda_cyc", lambda_cyc},
                         std::pair{"lambda_sty", lambda_sty}, std::pair{"lambda_ds", lambda_ds},
                         std::pair{"lr", lr}, std::pair{"f_lr", f_lr}, std::pair{"weight_decay", weight_decay}})
    require(std::isfinite(v) && v >= 0, std::string(name) + " must be a finite number >= 0, got " + num(v));
  require(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got " + num(beta1));
  require(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got " + num(beta2));
  require(ema_beta >= 0 && ema_beta <= 1, "ema_beta must be in [0, 1], got " + num(ema_beta));
  require(randcrop_prob >= 0 && randcrop_prob <= 1, "randcrop_prob must be in [0, 1], got " + num(randcrop_prob));
  try {
    parse_diff_augment(diffaug);
  } catch (const std::invalid_argument& e) {
    require(false, "diffaug: " + std::string(e.what()));
  }
  require(augment_p >= 0 && augment_p <= 1, "augment_p must be in [0, 1], got " + num(augment_p));
  require(ada_target >= 0 && ada_target <= 1, "ada_target must be in [0, 1] (0 = off), got " + num(ada_target));
  require(ada_target == 0 || parse_diff_augment(diffaug) != 0,
          "ada_target needs augmentation policies to adapt (diffaug, e.g. color,translation,cutout)");
  require(ada_interval >= 1, "ada_interval must be >= 1, got " + std::to_string(ada_interval));
  require(std::isfinite(ada_kimg) && ada_kimg > 0, "ada_kimg must be a finite number > 0, got " + num(ada_kimg));
  // Not bounded by total_iters: a run may be trained in parts (--total-iters, then a resume).
  require(recon_warmup >= 0, "recon_warmup must be >= 0, got " + std::to_string(recon_warmup));
}

std::string TrainOptions::to_json() const {
  nlohmann::ordered_json j;
  j["model"] = nlohmann::ordered_json::parse(model.to_json());
  j["batch_size"] = batch_size;
  j["total_iters"] = total_iters;
  j["lambda_reg"] = lambda_reg;
  j["lambda_cyc"] = lambda_cyc;
  j["lambda_sty"] = lambda_sty;
  j["lambda_ds"] = lambda_ds;
  j["ds_iter"] = ds_iter;
  j["lr"] = lr;
  j["f_lr"] = f_lr;
  j["beta1"] = beta1;
  j["beta2"] = beta2;
  j["weight_decay"] = weight_decay;
  j["ema_beta"] = ema_beta;
  j["randcrop_prob"] = randcrop_prob;
  j["seed"] = seed;
  j["diffaug"] = diffaug;
  j["augment_p"] = augment_p;
  j["ada_target"] = ada_target;
  j["ada_interval"] = ada_interval;
  j["ada_kimg"] = ada_kimg;
  j["recon_warmup"] = recon_warmup;
  // nlohmann writes doubles with enough digits to read back the same value.
  return j.dump();
}

TrainOptions TrainOptions::from_json(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(j.is_object(), "not a JSON object: " + text.substr(0, 200));
  auto get = [&](const char* key) -> const nlohmann::json& {
    require(j.contains(key), std::string("missing \"") + key + "\"");
    return j[key];
  };
  auto real = [&](const char* key) {
    const auto& v = get(key);
    require(v.is_number(), std::string("\"") + key + "\" is not a number");
    return v.get<double>();
  };
  auto integer = [&](const char* key) {
    const auto& v = get(key);
    require(v.is_number_integer(), std::string("\"") + key + "\" is not an integer");
    return v.get<int64_t>();
  };
  TrainOptions o;
  try {
    o.model = ModelConfig::from_json(get("model").dump());
  } catch (const std::invalid_argument& e) {
    require(false, std::string("\"model\": ") + e.what());
  }
  o.batch_size = integer("batch_size");
  o.total_iters = integer("total_iters");
  o.lambda_reg = real("lambda_reg");
  o.lambda_cyc = real("lambda_cyc");
  o.lambda_sty = real("lambda_sty");
  o.lambda_ds = real("lambda_ds");
  o.ds_iter = integer("ds_iter");
  o.lr = real("lr");
  o.f_lr = real("f_lr");
  o.beta1 = real("beta1");
  o.beta2 = real("beta2");
  o.weight_decay = real("weight_decay");
  o.ema_beta = real("ema_beta");
  o.randcrop_prob = real("randcrop_prob");
  const auto& seed = get("seed");
  require(seed.is_number_unsigned() || (seed.is_number_integer() && seed.get<int64_t>() >= 0),
          "\"seed\" is not an integer >= 0");
  o.seed = seed.get<uint64_t>();
  if (j.contains("diffaug")) {
    require(j["diffaug"].is_string(), "\"diffaug\" is not a string");
    o.diffaug = j["diffaug"].get<std::string>();
  }
  if (j.contains("augment_p")) o.augment_p = real("augment_p");
  if (j.contains("ada_target")) o.ada_target = real("ada_target");
  if (j.contains("ada_interval")) o.ada_interval = integer("ada_interval");
  if (j.contains("ada_kimg")) o.ada_kimg = real("ada_kimg");
  if (j.contains("recon_warmup")) o.recon_warmup = integer("recon_warmup");
  o.validate();
  return o;
}

TrainOptions preset_options(const std::string& name) {
  TrainOptions o;  // defaults are the paper's shared settings
  if (name == "celeba_hq") {
    o.model = celeba_hq_config();
    o.lambda_ds = 1.0;
  } else if (name == "afhq") {
    o.model = afhq_config();
    o.lambda_ds = 2.0;
  } else {
    throw std::invalid_argument("unknown preset \"" + name + "\" (known: celeba_hq, afhq, official, small, tiny)");
  }
  return o;
}

bool is_size_preset(const std::string& name) { return name == "official" || name == "small" || name == "tiny"; }

ModelConfig size_preset(const std::string& name, ModelConfig c) {
  struct Widths {
    int64_t base_dim, max_conv_dim, hidden_dim, style_dim, latent_dim;
  };
  Widths w{};
  if (name == "official")
    w = {0, 512, 512, 64, 16};
  else if (name == "small")
    w = {32, 128, 256, 64, 16};
  else if (name == "tiny")
    w = {8, 32, 32, 16, 8};
  else
    throw std::invalid_argument("unknown size preset \"" + name + "\" (known: official, small, tiny)");
  c.base_dim = w.base_dim;
  c.max_conv_dim = w.max_conv_dim;
  c.hidden_dim = w.hidden_dim;
  c.style_dim = w.style_dim;
  c.latent_dim = w.latent_dim;
  return c;
}

}  // namespace starganv2
