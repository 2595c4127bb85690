#include "official_eval_cli.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/device.h"
#include "model/inception.h"
#include "model/locations.h"
#include "model/lpips.h"
#include "model/official_eval.h"

namespace starganv2::tools {

namespace {

namespace fs = std::filesystem;

constexpr const char* kDescription =
    "FID and LPIPS of a StarGAN v2 model, exactly as the official code computes them (clovaai/stargan-v2 "
    "metrics/eval.py): for every pair of domains of VAL_DIR (its folders, sorted), each source image is "
    "translated NUM_OUTS times (latent: random z; reference: the target domain's val images); LPIPS over all pairs "
    "of those outputs; FID of the outputs against TRAIN_DIR/<target>. Writes FID_<step>_<mode>.json and "
    "LPIPS_<step>_<mode>.json into EVAL_DIR with the official keys (FID_latent/female2male, ..., FID_latent/mean).";
constexpr const char* kFooter =
    "Weights (never pickles): make them once from the files torchvision and the official repository download:\n"
    "  starganv2-convert-official --inception inception_v3_google-0cc3c7bd.pth --out inception.safetensors\n"
    "  starganv2-convert-official --alexnet alexnet-owt-7be5be79.pth --lpips metrics/lpips_weights.ckpt "
    "--out lpips.safetensors\n"
    "Exit codes: 0 done; 1 bad input (options, files, folders), with one message on stderr.";

// PIL's Image.open(f).convert('RGB'): 8-bit RGB, alpha dropped, grey expanded, and no EXIF
// rotation (PIL does not apply it; OpenCV does unless told not to).
at::Tensor decode_rgb(const fs::path& path) {
  cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  if (bgr.empty()) throw std::runtime_error(path.string() + ": cannot read as an image");
  if (bgr.depth() != CV_8U) bgr.convertTo(bgr, CV_8U, 1.0 / 257.0);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return at::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, at::kByte).clone();
}

void save_png(const fs::path& path, const at::Tensor& rgb) {
  const at::Tensor c = rgb.contiguous();
  cv::Mat view(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), CV_8UC3, c.data_ptr());
  cv::Mat bgr;
  cv::cvtColor(view, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path.string(), bgr)) throw std::runtime_error(path.string() + ": cannot write");
}

// One line per stage, redrawn in place on a terminal; a line per finished stage otherwise.
class ProgressBar {
 public:
  explicit ProgressBar(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}
  ~ProgressBar() { finish(); }

  void update(const std::string& what, int64_t done, int64_t total) {
    if (quiet_) return;
    if (what != what_) {
      finish();
      what_ = what;
      start_ = std::chrono::steady_clock::now();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
      std::fprintf(stderr, "\r%-40.40s [%s%s] %lld/%lld %.0f s", what.c_str(), std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), s);
      open_ = true;
    } else if (done == total) {
      std::fprintf(stderr, "%s: %lld batches, %.1f s\n", what.c_str(), static_cast<long long>(total), s);
    }
  }
  void finish() {
    if (open_) std::fputc('\n', stderr);
    open_ = false;
  }

 private:
  bool quiet_, tty_, open_ = false;
  std::string what_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int official_eval_main(int argc, char** argv, const std::string& program_name) {
  const std::string program = !program_name.empty() ? program_name
                              : argc > 0            ? fs::path(argv[0]).filename().string()
                                                    : "starganv2-eval official";
  CLI::App app(kDescription, program);
  app.footer(kFooter);
  std::string model, fan, val_dir, train_dir, inception_path, lpips_path, eval_dir = "expr/eval", mode = "both";
  std::string device = "auto";
  OfficialEvalOptions o;
  int64_t step = -1;
  bool quiet = false;
  app.add_option("--model", model,
                 "StarGAN v2 model file (.safetensors; the converter makes one from the "
                 "official 100000_nets_ema.ckpt)")
      ->required();
  app.add_option("--fan", fan, "FAN weights for the face masks when w_hpf > 0 and the model file lacks them");
  app.add_option("--val-dir", val_dir, "the official val/ folder: one folder per domain (sources, references)")
      ->required();
  app.add_option("--train-dir", train_dir, "the official train/ folder: one folder per domain (FID's real images)")
      ->required();
  app.add_option("--inception", inception_path, "Inception-v3 weights for FID (converter --inception)")->required();
  app.add_option("--lpips", lpips_path, "AlexNet and linear weights for LPIPS (converter --alexnet --lpips)")
      ->required();
  app.add_option("--eval-dir", eval_dir, "where the JSON files go (created)")->capture_default_str();
  app.add_option("--mode", mode, "latent, reference or both")
      ->check(CLI::IsMember({"latent", "reference", "both"}))
      ->capture_default_str();
  app.add_option("--num-outs-per-domain", o.num_outs_per_domain, "outputs per source image (official: 10)")
      ->check(CLI::Range(int64_t{2}, int64_t{1000}))
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_size,
                 "the official val_batch_size: sources and references per batch; LPIPS averages per batch")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the latent codes")->capture_default_str();
  app.add_option("--step", step, "training step in the file names (default: the model file's)");
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_flag("--save-images", o.save_images, "also write the outputs as the official does (EVAL_DIR/<task>/*.png)");
  app.add_flag("-q,--quiet", quiet, "no progress");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << program << ": error: " << e.what() << " (see --help)\n";
    return 1;
  }

  try {
    for (const auto& [path, what, hint] :
         {std::tuple{inception_path, "Inception weights (--inception)",
                     converter_command() + " --inception inception_v3_google-0cc3c7bd.pth --out " + inception_path},
          std::tuple{lpips_path, "LPIPS weights (--lpips)",
                     converter_command() + " --alexnet alexnet-owt-7be5be79.pth --lpips lpips_weights.ckpt --out " +
                         lpips_path},
          std::tuple{model, "model file (--model)", converter_command() + " 100000_nets_ema.ckpt --domains ..."}}) {
      std::error_code ec;
      if (!fs::is_regular_file(path, ec))
        throw std::invalid_argument(path + ": no such file: the " + what + "; make it with `" + hint + "`");
    }
    o.val_dir = val_dir;
    o.train_dir = train_dir;
    o.eval_dir = eval_dir;
    o.device = resolve_device(device);
    o.modes = mode == "both" ? std::vector<std::string>{"latent", "reference"} : std::vector<std::string>{mode};
    TranslatorNets nets = load_translator_nets(model, fan);
    for (const auto& w : nets.warnings) std::cerr << program << ": warning: " << w << "\n";
    o.step = step >= 0 ? step : Checkpoint::open(model).meta().step;
    InceptionV3 inception = load_inception(inception_path);
    LPIPS lpips = load_lpips(lpips_path);
    const auto domains = official_domains(o.val_dir);
    if (domains != nets.domains && static_cast<int64_t>(domains.size()) == nets.config.num_domains) {
      std::cerr << program << ": note: the folders of " << val_dir << " give the domain indices in sorted order (";
      for (size_t i = 0; i < domains.size(); ++i)
        std::cerr << (i ? ", " : "") << i << " = " << domains[i] << " (model: " << nets.domains[i] << ")";
      std::cerr << ")\n";
    }
    if (!quiet)
      std::cerr << program << ": " << model << " (" << nets.config.img_size << " px, w_hpf " << nets.config.w_hpf
                << ") on " << o.device.str() << ", " << o.num_outs_per_domain << " outputs per source, batch "
                << o.batch_size << "\n";
    ProgressBar bar(quiet);
    const auto results = run_official_eval(
        nets, *inception, *lpips, o, decode_rgb,
        [&](const std::string& what, int64_t done, int64_t total) { bar.update(what, done, total); }, save_png);
    bar.finish();
    for (const auto& r : results) {
      for (const auto* list : {&r.lpips, &r.fid})
        for (const auto& [k, v] : *list) std::printf("%-32s %.4f\n", k.c_str(), v);
      std::printf("wrote %s, %s\n", r.lpips_file.c_str(), r.fid_file.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace starganv2::tools
