// The official StarGAN v2 evaluation protocol (clovaai/stargan-v2 metrics/eval.py
// calculate_metrics and calculate_fid_for_all_tasks): for every target domain of the sorted domain
// folders of val/ and every other (source) domain, each source image is translated
// num_outs_per_domain times (latent mode: a fresh z per output; reference mode: a new batch of the
// target domain's val images per output), with FAN masks when w_hpf > 0. LPIPS is the mean over
// source batches of the mean over all pairs of outputs of the same sources; FID compares the
// outputs, as the official saves and reloads them (8-bit PNG pixels, resized to 299, ImageNet
// normalisation), with the target domain's training images. Per-task values and their mean are
// written as the official JSON files. LibTorch only: images come in through a decoder callback.
//
// Differences from the official run, all of them in what is random: the official loaders shuffle
// with the global torch RNG (the grouping of sources into batches, the reference batches of each
// pass) and z comes from it too; here the sources are taken in sorted order, and z and the
// reference order of each pass come from CPU generators seeded with `seed` and `seed + 1`, so a
// run can be repeated. The paper's figures are means over 10 seeds for that reason.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint.h"  // TranslatorNets
#include "inception.h"
#include "lpips.h"

namespace starganv2 {

struct OfficialEvalOptions {
  std::filesystem::path val_dir;    // val/<domain>/**.{png,jpg,jpeg,JPG}: sources and references
  std::filesystem::path train_dir;  // train/<domain>/...: the real images of FID
  std::filesystem::path eval_dir;   // where the JSON files (and saved outputs) go; created
  std::vector<std::string> modes{"latent", "reference"};
  int64_t num_outs_per_domain = 10;  // official default
  int64_t batch_size = 32;           // the official val_batch_size: batches of sources and references
  uint64_t seed = 777;               // official default seed
  int64_t step = 0;                  // in the file names: FID_<step>_<mode>.json (%.5i)
  c10::Device device = c10::kCPU;
  bool save_images = false;  // write <eval_dir>/<task>/%.4i_%.2i.png as the official does
};

// (H,W,3) uint8 RGB of an image file, as PIL's Image.open(f).convert('RGB') gives it. Throws
// std::runtime_error naming the file when it cannot be read. Called from several threads at once
// (the images of a batch are decoded in parallel).
using DecodeImage = std::function<at::Tensor(const std::filesystem::path&)>;
// Writes (H,W,3) uint8 RGB pixels as PNG; only used with save_images.
using SaveImage = std::function<void(const std::filesystem::path&, const at::Tensor&)>;
// FID's features of a batch (N,3,299,299) ImageNet-normalised on the device -> (N,D): the
// Inception pool features in the protocol; tests pass cheaper ones.
using FeatureFn = std::function<at::Tensor(const at::Tensor&)>;
// Called after each unit of work: what ("FID real female", "latent: female2male"), done, total.
using EvalProgress = std::function<void(const std::string& what, int64_t done, int64_t total)>;

struct OfficialEvalMode {
  std::string mode;
  // Official keys in the official order: "LPIPS_<mode>/<src>2<trg>" ..., "LPIPS_<mode>/mean";
  // "FID_<mode>/<src>2<trg>" ..., "FID_<mode>/mean".
  std::vector<std::pair<std::string, double>> lpips, fid;
  std::filesystem::path lpips_file, fid_file;  // the JSON files written
};

// The image files of a folder as the official listdir() finds them: recursively, extensions
// png, jpg, jpeg and JPG (case as written), sorted.
std::vector<std::filesystem::path> official_image_files(const std::filesystem::path& dir);

// The domains: the sorted names of the folders in val_dir.
std::vector<std::string> official_domains(const std::filesystem::path& val_dir);

// What run_official_eval checks before any work, for callers that want every problem reported
// up front (starganv2-train checks at start what its evaluations will need): the options, the
// domain folders of val_dir (as many as the model's domains), each with images, train_dir/<domain>
// with at least 2 images, enough references for a reference batch. Throws std::invalid_argument
// naming the folder and the problem; returns the sorted domains and the val images of each.
struct OfficialEvalInputs {
  std::vector<std::string> domains;
  std::map<std::string, std::vector<std::filesystem::path>> val_files;
};
OfficialEvalInputs check_official_eval(const TranslatorNets& nets, const OfficialEvalOptions& options);

// Runs the protocol for each of options.modes on nets (moved to options.device; float32), with
// the given Inception and LPIPS networks (moved too). Checks every folder first and throws
// std::invalid_argument naming what is missing: val_dir's domain folders (as many as the model's
// domains), each with images, train_dir/<domain> with at least 2 images, enough references for
// a reference batch; std::runtime_error for an image that cannot be decoded.
std::vector<OfficialEvalMode> run_official_eval(TranslatorNets& nets, InceptionV3Impl& inception, LPIPSImpl& lpips,
                                                const OfficialEvalOptions& options, const DecodeImage& decode,
                                                const EvalProgress& progress = {}, const SaveImage& save = {});
// The same with any feature function in place of Inception (moved to the device by the caller).
std::vector<OfficialEvalMode> run_official_eval(TranslatorNets& nets, const FeatureFn& features, LPIPSImpl& lpips,
                                                const OfficialEvalOptions& options, const DecodeImage& decode,
                                                const EvalProgress& progress = {}, const SaveImage& save = {});

}  // namespace starganv2
