#include "config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>

#include "safetensors.h"  // json_nesting_within

namespace starganv2 {

namespace {

bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("invalid model config: " + what);
}

}  // namespace

void ModelConfig::validate() const {
  // The generator's encoder needs log2(img_size) - 4 (+1 with w_hpf) downsampling steps and the
  // style encoder / discriminator end in a 4x4 convolution, so 32 px is the smallest usable size.
  require(is_power_of_two(img_size) && img_size >= 32 && img_size <= 2048,
          "img_size must be a power of two in [32, 2048], got " + std::to_string(img_size));
  require(style_dim > 0 && style_dim <= 4096, "style_dim must be in [1, 4096], got " + std::to_string(style_dim));
  require(latent_dim > 0 && latent_dim <= 4096, "latent_dim must be in [1, 4096], got " + std::to_string(latent_dim));
  require(num_domains > 0 && num_domains <= 1024,
          "num_domains must be in [1, 1024], got " + std::to_string(num_domains));
  require(max_conv_dim > 0 && max_conv_dim <= 8192,
          "max_conv_dim must be in [1, 8192], got " + std::to_string(max_conv_dim));
  require(hidden_dim > 0 && hidden_dim <= 8192, "hidden_dim must be in [1, 8192], got " + std::to_string(hidden_dim));
  require(w_hpf >= 0 && w_hpf <= 1e6, "w_hpf must be in [0, 1e6], got " + std::to_string(w_hpf));
  require(base_dim >= 0 && base_dim <= 8192, "base_dim must be in [0, 8192] (0 = official), got " + std::to_string(base_dim));
}

std::string ModelConfig::to_json() const {
  nlohmann::ordered_json j;
  j["img_size"] = img_size;
  j["style_dim"] = style_dim;
  j["latent_dim"] = latent_dim;
  j["num_domains"] = num_domains;
  j["max_conv_dim"] = max_conv_dim;
  j["hidden_dim"] = hidden_dim;
  j["w_hpf"] = w_hpf;
  // Written only when set, so files of official-width models read as before.
  if (base_dim != 0) j["base_dim"] = base_dim;
  return j.dump();
}

ModelConfig ModelConfig::from_json(const std::string& text) {
  // A config is a flat object of a few numbers; the bounds refuse anything else before parsing.
  require(text.size() <= kMaxConfigJsonBytes, "config text of " + std::to_string(text.size()) + " bytes exceeds " +
                                                  std::to_string(kMaxConfigJsonBytes));
  require(json_nesting_within(text, 1), "config is not a flat JSON object: " + text.substr(0, 200));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  require(j.is_object(), "config is not a JSON object: " + text.substr(0, 200));
  auto integer = [&](const char* key) -> int64_t {
    require(j.contains(key), std::string("missing \"") + key + "\"");
    const auto& v = j[key];
    const std::string name = std::string("\"") + key + "\"";
    // Every integer field is bounded far below 2^31 by validate(); anything outside that range
    // is refused here, before a conversion whose result would be undefined (1e300 -> int64).
    constexpr double kLimit = 1u << 31;
    if (v.is_number_unsigned()) {
      require(v.get<uint64_t>() <= static_cast<uint64_t>(kLimit), name + " is out of range: " + v.dump());
      return static_cast<int64_t>(v.get<uint64_t>());
    }
    if (v.is_number_integer()) {
      require(v.get<int64_t>() >= -static_cast<int64_t>(kLimit), name + " is out of range: " + v.dump());
      return v.get<int64_t>();
    }
    // Configs written from Python may hold 256.0 for 256: an integral float is that integer.
    require(v.is_number_float(), name + " must be an integer, got " + v.dump());
    const double d = v.get<double>();
    require(std::isfinite(d) && std::fabs(d) <= kLimit, name + " is out of range: " + v.dump());
    require(d == std::trunc(d), name + " must be an integer, got " + v.dump());
    return static_cast<int64_t>(d);
  };
  ModelConfig c;
  c.img_size = integer("img_size");
  c.style_dim = integer("style_dim");
  c.latent_dim = integer("latent_dim");
  c.num_domains = integer("num_domains");
  c.max_conv_dim = integer("max_conv_dim");
  // hidden_dim was fixed at 512 in the official code; files that predate it mean 512.
  c.hidden_dim = j.contains("hidden_dim") ? integer("hidden_dim") : 512;
  require(j.contains("w_hpf") && j["w_hpf"].is_number(), "missing or non-numeric \"w_hpf\"");
  c.w_hpf = j["w_hpf"].get<double>();  // a double of any JSON number is defined; validate() bounds it
  c.base_dim = j.contains("base_dim") ? integer("base_dim") : 0;
  c.validate();
  return c;
}

ModelConfig celeba_hq_config() {
  ModelConfig c;
  c.num_domains = 2;
  c.w_hpf = 1.0;
  return c;
}

ModelConfig afhq_config() {
  ModelConfig c;
  c.num_domains = 3;
  c.w_hpf = 0.0;
  return c;
}

}  // namespace starganv2
