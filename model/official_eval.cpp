#include "official_eval.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "fan.h"
#include "frechet.h"
#include "pil_resize.h"

namespace starganv2 {

namespace fs = std::filesystem;

std::vector<fs::path> official_image_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  // Path.rglob follows no symlinked folders; plain recursion without following them.
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string ext = it->path().extension().string();
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".JPG") files.push_back(it->path());
  }
  if (ec) throw std::invalid_argument(dir.string() + ": cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> official_domains(const fs::path& val_dir) {
  std::error_code ec;
  if (!fs::is_directory(val_dir, ec)) throw std::invalid_argument(val_dir.string() + ": no such folder (--val-dir)");
  std::vector<std::string> domains;
  for (const auto& e : fs::directory_iterator(val_dir, ec))
    if (e.is_directory()) domains.push_back(e.path().filename().string());
  std::sort(domains.begin(), domains.end());
  return domains;
}

namespace {

// One JSON file as the official utils.save_json writes it (json.dump, indent 4, insertion order).
void save_json(const fs::path& path, const std::vector<std::pair<std::string, double>>& values) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : values) j[k] = v;
  std::ofstream f(path);
  f << j.dump(4);
  if (!f) throw std::runtime_error(path.string() + ": cannot write");
}

// The official "mean" entry: value / count summed in order.
double official_mean(const std::vector<std::pair<std::string, double>>& values) {
  double mean = 0;
  for (const auto& [k, v] : values) mean += v / static_cast<double>(values.size());
  return mean;
}

std::string padded(int64_t value, int width) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*lld", width, static_cast<long long>(value));
  return buf;
}

// fn(i) for i in [0, n), on LibTorch's intra-op threads: decoding and Pillow-exact resizing run
// on the CPU, one image per task, and would otherwise leave a GPU waiting (the official loader
// uses 4 worker processes). The images are independent; the results keep their order.
std::vector<at::Tensor> per_image(int64_t n, const std::function<at::Tensor(int64_t)>& fn) {
  std::vector<at::Tensor> out(static_cast<size_t>(n));
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[static_cast<size_t>(i)] = fn(i);
  });
  return out;
}

}  // namespace

OfficialEvalInputs check_official_eval(const TranslatorNets& nets, const OfficialEvalOptions& o) {
  OfficialEvalInputs inputs;
  if (o.num_outs_per_domain < 2)
    throw std::invalid_argument("num_outs_per_domain must be >= 2 (LPIPS compares pairs of outputs)");
  if (o.batch_size < 1) throw std::invalid_argument("batch size must be >= 1");
  for (const auto& m : o.modes)
    if (m != "latent" && m != "reference")
      throw std::invalid_argument("mode \"" + m + "\": expected latent or reference");
  inputs.domains = official_domains(o.val_dir);
  if (static_cast<int64_t>(inputs.domains.size()) != nets.config.num_domains) {
    std::string names;
    for (const auto& d : inputs.domains) names += (names.empty() ? "" : ", ") + d;
    std::string model;
    for (const auto& d : nets.domains) model += (model.empty() ? "" : ", ") + d;
    throw std::invalid_argument(o.val_dir.string() + ": " + std::to_string(inputs.domains.size()) + " domain folders (" +
                                (names.empty() ? "none" : names) + ") but the model has " +
                                std::to_string(nets.config.num_domains) + " domains (" + model +
                                "); the folders, sorted, give the domain indices");
  }
  for (const auto& d : inputs.domains) {
    inputs.val_files[d] = official_image_files(o.val_dir / d);
    if (inputs.val_files[d].empty())
      throw std::invalid_argument((o.val_dir / d).string() + ": no images (png, jpg, jpeg, JPG)");
    std::error_code ec;
    if (!fs::is_directory(o.train_dir / d, ec))
      throw std::invalid_argument((o.train_dir / d).string() +
                                  ": no such folder (FID compares the outputs with the target domain's training "
                                  "images; --train-dir)");
    if (official_image_files(o.train_dir / d).size() < 2)
      throw std::invalid_argument((o.train_dir / d).string() + ": fewer than 2 images (FID needs a covariance)");
    if (std::count(o.modes.begin(), o.modes.end(), "reference") &&
        static_cast<int64_t>(inputs.val_files[d].size()) < o.batch_size)
      throw std::invalid_argument((o.val_dir / d).string() + ": " + std::to_string(inputs.val_files[d].size()) +
                                  " images, fewer than one reference batch of " + std::to_string(o.batch_size) +
                                  " (the official loader drops incomplete reference batches; lower --batch-size)");
  }
  return inputs;
}

namespace {

class Protocol {
 public:
  Protocol(TranslatorNets& nets, const FeatureFn& inception, LPIPSImpl& lpips, const OfficialEvalOptions& o,
           const DecodeImage& decode, const EvalProgress& progress, const SaveImage& save)
      : nets_(nets), inception_(inception), lpips_(lpips), o_(o), decode_(decode), progress_(progress), save_(save) {}

  std::vector<OfficialEvalMode> run() {
    check();
    std::vector<OfficialEvalMode> results;
    for (const auto& mode : o_.modes) results.push_back(run_mode(mode));
    return results;
  }

 private:
  int64_t img_size() const { return nets_.config.img_size; }

  void check() {
    OfficialEvalInputs inputs = check_official_eval(nets_, o_);
    domains_ = std::move(inputs.domains);
    val_files_ = std::move(inputs.val_files);
    fs::create_directories(o_.eval_dir);
  }

  // Sources / references: Resize(img_size), [-1,1].
  at::Tensor load_batch(const std::vector<fs::path>& files, size_t begin, size_t end) {
    const auto xs = per_image(static_cast<int64_t>(end - begin), [&](int64_t i) {
      return eval_loader_tensor(decode(files[begin + static_cast<size_t>(i)]), img_size(), false);
    });
    return at::stack(xs).to(o_.device);
  }

  at::Tensor decode(const fs::path& p) {
    at::Tensor img = decode_(p);
    if (img.dim() != 3 || img.size(2) != 3 || img.scalar_type() != at::kByte)
      throw std::runtime_error(p.string() + ": the decoder did not return (H,W,3) uint8 RGB");
    return img;
  }

  // Inception features of 8-bit images (N,H,W,3) as the official reads its PNGs back.
  at::Tensor features_of_pixels(const at::Tensor& pixels) {
    const auto xs =
        per_image(pixels.size(0), [&](int64_t k) { return eval_loader_tensor(pixels[k], img_size(), true); });
    return inception_(at::stack(xs).to(o_.device)).to(at::kCPU);
  }

  const GaussianStats& real_stats(const std::string& domain) {
    auto it = real_.find(domain);
    if (it != real_.end()) return it->second;
    const auto files = official_image_files(o_.train_dir / domain);
    std::vector<at::Tensor> feats;
    const int64_t batches = (static_cast<int64_t>(files.size()) + o_.batch_size - 1) / o_.batch_size;
    for (int64_t b = 0; b < batches; ++b) {
      const size_t begin = static_cast<size_t>(b * o_.batch_size);
      const size_t end = std::min(files.size(), begin + static_cast<size_t>(o_.batch_size));
      const auto xs = per_image(static_cast<int64_t>(end - begin), [&](int64_t i) {
        return eval_loader_tensor(decode(files[begin + static_cast<size_t>(i)]), img_size(), true);
      });
      feats.push_back(inception_(at::stack(xs).to(o_.device)).to(at::kCPU));
      if (progress_) progress_("FID real images: " + domain, b + 1, batches);
    }
    return real_.emplace(domain, gaussian_stats(at::cat(feats))).first->second;
  }

  OfficialEvalMode run_mode(const std::string& mode) {
    OfficialEvalMode result;
    result.mode = mode;
    at::Generator z_gen = at::detail::createCPUGenerator(o_.seed);
    // The official reference loader shuffles at every pass over the target's val images
    // (shuffle=True, drop_last=True); seeded here so that a run can be repeated.
    at::Generator ref_gen = at::detail::createCPUGenerator(o_.seed + 1);
    std::vector<std::pair<std::string, double>> fid;
    for (size_t trg_idx = 0; trg_idx < domains_.size(); ++trg_idx) {
      const std::string& trg = domains_[trg_idx];
      // The official reference iterator lives per target domain, across its source domains.
      const auto& refs = val_files_[trg];
      const int64_t ref_batches = static_cast<int64_t>(refs.size()) / o_.batch_size;  // drop_last
      int64_t ref_cursor = 0;
      std::vector<fs::path> ref_order;
      for (const auto& src : domains_) {
        if (src == trg) continue;
        const std::string task = src + "2" + trg;
        const fs::path fake_dir = o_.eval_dir / task;
        if (o_.save_images) {
          fs::remove_all(fake_dir);
          fs::create_directories(fake_dir);
        }
        const auto& files = val_files_[src];
        const int64_t batches = (static_cast<int64_t>(files.size()) + o_.batch_size - 1) / o_.batch_size;
        std::vector<double> lpips_values;
        std::vector<at::Tensor> fake_features;
        for (int64_t i = 0; i < batches; ++i) {
          const size_t begin = static_cast<size_t>(i * o_.batch_size);
          const size_t end = std::min(files.size(), begin + static_cast<size_t>(o_.batch_size));
          const at::Tensor x_src = load_batch(files, begin, end);
          const int64_t n = x_src.size(0);
          const at::Tensor y_trg =
              at::full({n}, static_cast<int64_t>(trg_idx), at::TensorOptions(at::kLong).device(o_.device));
          Masks masks;
          if (nets_.config.w_hpf > 0) masks = fan_masks(*nets_.fan, x_src, at::kFloat);
          std::vector<at::Tensor> group;
          for (int64_t j = 0; j < o_.num_outs_per_domain; ++j) {
            at::Tensor s_trg;
            if (mode == "latent") {
              const at::Tensor z = at::randn({n, nets_.config.latent_dim}, z_gen).to(o_.device);
              s_trg = nets_.mapping_network->forward(z, y_trg);
            } else {
              if (ref_cursor % ref_batches == 0) {  // a new pass: a new order
                const at::Tensor perm = at::randperm(static_cast<int64_t>(refs.size()), ref_gen);
                ref_order.clear();
                for (int64_t k = 0; k < perm.size(0); ++k) ref_order.push_back(refs[perm[k].item<int64_t>()]);
              }
              const size_t rb = static_cast<size_t>((ref_cursor++ % ref_batches) * o_.batch_size);
              const at::Tensor x_ref =
                  load_batch(ref_order, rb, rb + static_cast<size_t>(o_.batch_size)).narrow(0, 0, n);
              s_trg = nets_.style_encoder->forward(x_ref, y_trg);
            }
            const at::Tensor x_fake = nets_.generator->forward(x_src, s_trg, masks);
            group.push_back(x_fake);
            const at::Tensor pixels = saved_image_pixels(x_fake);
            if (o_.save_images && save_)
              for (int64_t k = 0; k < n; ++k)
                save_(fake_dir / (padded(i * o_.batch_size + k + 1, 4) + "_" + padded(j + 1, 2) + ".png"), pixels[k]);
            fake_features.push_back(features_of_pixels(pixels));
          }
          // calculate_lpips_given_images: the batch mean of the pairwise distances.
          lpips_values.push_back(lpips_of_group(lpips_, group).mean().item<double>());
          if (progress_) progress_(mode + ": " + task, i + 1, batches);
        }
        double lpips_mean = 0;
        for (double v : lpips_values) lpips_mean += v;
        result.lpips.emplace_back("LPIPS_" + mode + "/" + task, lpips_mean / static_cast<double>(lpips_values.size()));
        const at::Tensor fakes = at::cat(fake_features);
        if (fakes.size(0) < 2) throw std::invalid_argument(task + ": fewer than 2 outputs for FID");
        fid.emplace_back("FID_" + mode + "/" + task, frechet_distance(real_stats(trg), gaussian_stats(fakes)));
      }
    }
    const double lpips_mean = official_mean(result.lpips);
    result.lpips.emplace_back("LPIPS_" + mode + "/mean", lpips_mean);
    const double fid_mean = official_mean(fid);
    fid.emplace_back("FID_" + mode + "/mean", fid_mean);
    result.fid = std::move(fid);
    result.lpips_file = o_.eval_dir / ("LPIPS_" + padded(o_.step, 5) + "_" + mode + ".json");
    result.fid_file = o_.eval_dir / ("FID_" + padded(o_.step, 5) + "_" + mode + ".json");
    save_json(result.lpips_file, result.lpips);
    save_json(result.fid_file, result.fid);
    return result;
  }

  TranslatorNets& nets_;
  const FeatureFn& inception_;
  LPIPSImpl& lpips_;
  const OfficialEvalOptions& o_;
  const DecodeImage& decode_;
  const EvalProgress& progress_;
  const SaveImage& save_;
  std::vector<std::string> domains_;
  std::map<std::string, std::vector<fs::path>> val_files_;
  std::map<std::string, GaussianStats> real_;
};

}  // namespace

std::vector<OfficialEvalMode> run_official_eval(TranslatorNets& nets, const FeatureFn& features, LPIPSImpl& lpips,
                                                const OfficialEvalOptions& options, const DecodeImage& decode,
                                                const EvalProgress& progress, const SaveImage& save) {
  if (!decode || !features) throw std::invalid_argument("run_official_eval: no image decoder or feature function");
  if (nets.config.w_hpf > 0 && !nets.fan) throw std::invalid_argument("the model has w_hpf > 0 but no FAN");
  // Moved before inference mode, so the parameters stay ordinary tensors for the caller.
  for (torch::nn::Module* m :
       {static_cast<torch::nn::Module*>(nets.generator.get()),
        static_cast<torch::nn::Module*>(nets.mapping_network.get()),
        static_cast<torch::nn::Module*>(nets.style_encoder.get()), static_cast<torch::nn::Module*>(&lpips)}) {
    m->to(options.device);
    m->eval();
  }
  if (nets.fan) {
    nets.fan->to(options.device);
    nets.fan->eval();
  }
  c10::InferenceMode guard;
  return Protocol(nets, features, lpips, options, decode, progress, save).run();
}

std::vector<OfficialEvalMode> run_official_eval(TranslatorNets& nets, InceptionV3Impl& inception, LPIPSImpl& lpips,
                                                const OfficialEvalOptions& options, const DecodeImage& decode,
                                                const EvalProgress& progress, const SaveImage& save) {
  inception.to(options.device);
  inception.eval();
  return run_official_eval(nets, FeatureFn([&](const at::Tensor& x) { return inception.forward(x); }), lpips, options,
                           decode, progress, save);
}

}  // namespace starganv2
