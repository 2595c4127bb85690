#include "run.h"

#include "model/device.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#ifdef STARGANV2_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "data/augment.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "curves.h"
#include "distributed.h"
#include "evaluation.h"
#include "model/locations.h"
#include "model/safetensors.h"
#include "random.h"
#include "samples.h"
#include "train_state.h"

namespace starganv2 {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// In the run folder, next to options.json: the run options (see kRunOptionNames).
constexpr const char* kRunFile = "run.json";
// In <out>/samples, rewritten at every sample and evaluation step and at the end: the curves of
// log.jsonl (trainer/curves.h).
constexpr const char* kCurvesFile = "curves.png";

// A problem with the user's input, reported as one line before training starts.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

void add_device_memory(nlohmann::ordered_json& j, const torch::Device& device) {
#ifdef STARGANV2_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    const auto agg = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    j["cuda_allocated_mb"] = static_cast<double>(stats.allocated_bytes[agg].current) / (1024.0 * 1024.0);
    j["cuda_peak_mb"] = static_cast<double>(stats.allocated_bytes[agg].peak) / (1024.0 * 1024.0);
    j["cuda_reserved_mb"] = static_cast<double>(stats.reserved_bytes[agg].current) / (1024.0 * 1024.0);
  }
#else
  (void)j;
  (void)device;
#endif
}

std::string hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return text;
}

std::string step_name(int64_t step) {
  char text[32];
  std::snprintf(text, sizeof text, "%06lld", static_cast<long long>(step));
  return text;
}

// Options that identify a run, by CLI name (without dashes, underscores as the official names).
const std::map<std::string, std::function<std::string(const TrainOptions&)>>& identity_options() {
  static const std::map<std::string, std::function<std::string(const TrainOptions&)>> m = {
      {"img_size", [](const TrainOptions& o) { return std::to_string(o.model.img_size); }},
      {"style_dim", [](const TrainOptions& o) { return std::to_string(o.model.style_dim); }},
      {"latent_dim", [](const TrainOptions& o) { return std::to_string(o.model.latent_dim); }},
      {"max_conv_dim", [](const TrainOptions& o) { return std::to_string(o.model.max_conv_dim); }},
      {"hidden_dim", [](const TrainOptions& o) { return std::to_string(o.model.hidden_dim); }},
      {"w_hpf", [](const TrainOptions& o) { return nlohmann::json(o.model.w_hpf).dump(); }},
      {"base_dim",
       [](const TrainOptions& o) {
         TrainOptions copy = o;
         const int64_t* v = base_dim_of(copy.model);
         return v ? std::to_string(*v) : std::string("0");
       }},
      {"batch_size", [](const TrainOptions& o) { return std::to_string(o.batch_size); }},
      {"lambda_reg", [](const TrainOptions& o) { return nlohmann::json(o.lambda_reg).dump(); }},
      {"lambda_cyc", [](const TrainOptions& o) { return nlohmann::json(o.lambda_cyc).dump(); }},
      {"lambda_sty", [](const TrainOptions& o) { return nlohmann::json(o.lambda_sty).dump(); }},
      {"lambda_ds", [](const TrainOptions& o) { return nlohmann::json(o.lambda_ds).dump(); }},
      {"ds_iter", [](const TrainOptions& o) { return std::to_string(o.ds_iter); }},
      {"lr", [](const TrainOptions& o) { return nlohmann::json(o.lr).dump(); }},
      {"f_lr", [](const TrainOptions& o) { return nlohmann::json(o.f_lr).dump(); }},
      {"beta1", [](const TrainOptions& o) { return nlohmann::json(o.beta1).dump(); }},
      {"beta2", [](const TrainOptions& o) { return nlohmann::json(o.beta2).dump(); }},
      {"weight_decay", [](const TrainOptions& o) { return nlohmann::json(o.weight_decay).dump(); }},
      {"ema_beta", [](const TrainOptions& o) { return nlohmann::json(o.ema_beta).dump(); }},
      {"randcrop_prob", [](const TrainOptions& o) { return nlohmann::json(o.randcrop_prob).dump(); }},
      {"seed", [](const TrainOptions& o) { return std::to_string(o.seed); }},
      {"diffaug", [](const TrainOptions& o) { return o.diffaug.empty() ? std::string("none") : o.diffaug; }},
      {"augment_p", [](const TrainOptions& o) { return nlohmann::json(o.augment_p).dump(); }},
      {"ada_target", [](const TrainOptions& o) { return nlohmann::json(o.ada_target).dump(); }},
      {"ada_interval", [](const TrainOptions& o) { return std::to_string(o.ada_interval); }},
      {"ada_kimg", [](const TrainOptions& o) { return nlohmann::json(o.ada_kimg).dump(); }},
      {"recon_warmup", [](const TrainOptions& o) { return std::to_string(o.recon_warmup); }},
  };
  return m;
}

std::string dashed(std::string name) {
  for (char& c : name)
    if (c == '_') c = '-';
  return "--" + name;
}

// Text files of the run folder (options.json, run.json) appear whole or not at all.
void write_text_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.parent_path() / (".tmp-" + path.filename().string());
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw InputError(path.string() + ": cannot write");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw InputError(path.string() + ": cannot write: " + ec.message());
  }
}

std::string absolute_or_empty(const fs::path& p) {
  if (p.empty()) return "";
  std::error_code ec;
  const fs::path a = fs::absolute(p, ec);
  return (ec ? p : a.lexically_normal()).string();
}

// <out>/run.json: what continuing a run needs besides the resume file (kRunOptionNames).
std::string run_file_text(const RunConfig& c) {
  nlohmann::ordered_json j;
  j["train_dir"] = absolute_or_empty(c.train_dir);
  j["val_dir"] = absolute_or_empty(c.val_dir);
  j["fan"] = absolute_or_empty(c.fan);
  j["print_every"] = c.print_every;
  j["sample_every"] = c.sample_every;
  j["save_every"] = c.save_every;
  j["device"] = c.device;
  j["precision"] = to_string(c.precision);
  j["workers"] = c.workers;
  j["val_batch_size"] = c.val_batch_size;
  j["sample_outs"] = c.sample_outs;
  j["verify_images"] = c.verify_images;
  j["keep_last"] = c.keep_last;
  j["eval_every"] = c.eval_every;
  j["eval_images"] = c.eval_images;
  j["inception"] = absolute_or_empty(c.inception);
  j["lpips"] = absolute_or_empty(c.lpips);
  j["landmarks"] = absolute_or_empty(c.landmarks);
  return j.dump(2) + "\n";
}

// Takes every run option that the command line did not give from a run.json.
void apply_run_file(const fs::path& path, RunConfig& c) {
  std::ifstream f(path);
  std::stringstream text;
  text << f.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!f || !j.is_object()) throw InputError(path.string() + ": not a run file (a JSON object written by starganv2-train)");
  auto take = [&](const char* name, auto& value) {
    if (c.explicit_run_options.count(name) || !j.contains(name)) return;
    try {
      value = j.at(name).get<std::decay_t<decltype(value)>>();
    } catch (const nlohmann::json::exception&) {
      throw InputError(path.string() + ": \"" + name + "\" has the wrong type: " + j.at(name).dump());
    }
  };
  std::string train_dir = c.train_dir.string(), val_dir = c.val_dir.string(), fan = c.fan.string();
  std::string inception = c.inception.string(), lpips = c.lpips.string(), landmarks = c.landmarks.string();
  std::string precision = to_string(c.precision);
  take("train_dir", train_dir);
  take("val_dir", val_dir);
  take("fan", fan);
  take("print_every", c.print_every);
  take("sample_every", c.sample_every);
  take("save_every", c.save_every);
  take("device", c.device);
  take("precision", precision);
  take("workers", c.workers);
  take("val_batch_size", c.val_batch_size);
  take("sample_outs", c.sample_outs);
  take("verify_images", c.verify_images);
  take("keep_last", c.keep_last);
  take("eval_every", c.eval_every);
  take("eval_images", c.eval_images);
  take("inception", inception);
  take("lpips", lpips);
  take("landmarks", landmarks);
  c.inception = inception;
  c.lpips = lpips;
  c.landmarks = landmarks;
  c.train_dir = train_dir;
  c.val_dir = val_dir;
  c.fan = fan;
  try {
    c.precision = parse_training_precision(precision);
  } catch (const std::invalid_argument& e) {
    throw InputError(path.string() + ": " + e.what());
  }
}

// For a command line the user can paste: single-quoted unless made of harmless characters only.
std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                       "0123456789_-+./:=,@%") == std::string::npos;
  if (plain) return s;
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

std::string megabytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, bytes < 10e6 ? "%.1f MB" : "%.0f MB", bytes / 1e6);
  return text;
}

int64_t parameter_count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

// "G 1.23 M, F 0.30 M, ... parameters; each save writes a 13 MB model file and a 70 MB resume file":
// the sizes of what write_model_file and write_resume_file store (float32 weights; the resume
// file adds D, the trained copies and Adam's two moments per trained weight), so that a user
// sees before the first save what a run will put on disk.
std::string size_line(const Solver& solver) {
  const char* letters[] = {"G", "F", "E", "D"};
  std::string line = "Model: ";
  int64_t trained = 0, ema = 0, i = 0;
  for (const auto& [name, net] : solver.nets().named()) {
    const int64_t n = parameter_count(*net);
    trained += n;
    char text[64];
    std::snprintf(text, sizeof text, "%s%s %.2f M", i ? ", " : "", letters[std::min<int64_t>(i, 3)], n / 1e6);
    line += text;
    ++i;
  }
  for (const auto& [name, net] : solver.nets_ema().named()) ema += parameter_count(*net);
  const int64_t fan = solver.fan() ? parameter_count(*solver.fan()) : 0;
  char kept[64];
  std::snprintf(kept, sizeof kept, "%.2f M", static_cast<double>(ema) / 1e6);
  line += std::string(" parameters (the model file holds the averaged G, F, E: ") + kept + "); each save writes a " +
          megabytes(4.0 * static_cast<double>(ema + fan)) + " model file and a " +
          megabytes(4.0 * static_cast<double>(3 * trained + ema + fan)) + " resume file";
  return line;
}

// Removes the oldest model-<step>.safetensors of `dir` beyond the newest `keep` (0 = keep all).
void keep_newest_models(const fs::path& dir, int64_t keep, std::ostream& err) {
  if (keep <= 0) return;
  std::vector<fs::path> models;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("model-", 0) == 0 && entry.path().extension() == ".safetensors") models.push_back(entry.path());
  }
  std::sort(models.begin(), models.end());  // zero-padded steps: names sort by step
  for (size_t i = 0; i + static_cast<size_t>(keep) < models.size(); ++i) {
    fs::remove(models[i], ec);
    if (ec) err << "starganv2-train: warning: cannot remove " << models[i].string() << ": " << ec.message() << "\n";
  }
}

class Progress {
 public:
  Progress(std::ostream& out, bool bar, int64_t total) : out_(out), bar_(bar), total_(total) {}

  void update(int64_t step, double it_per_s, const std::vector<std::pair<std::string, double>>* losses) {
    if (!bar_) return;
    const auto now = Clock::now();
    if (step < total_ && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * static_cast<double>(step) / static_cast<double>(total_)) : width;
    std::string line = "\r[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    char text[160];
    std::snprintf(text, sizeof text, "%lld/%lld  %.2f it/s  ETA %s", static_cast<long long>(step),
                  static_cast<long long>(total_), it_per_s,
                  hms(it_per_s > 0 ? static_cast<double>(total_ - step) / it_per_s : NAN).c_str());
    line += text;
    if (losses) {
      for (const auto& [k, v] : *losses)
        if (k == "D/latent_total" || k == "G/latent_total") {
          std::snprintf(text, sizeof text, "  %s %.3f", k.c_str(), v);
          line += text;
        }
    }
    out_ << line << "\x1b[K" << std::flush;
    dirty_ = true;
  }
  // Ends the bar's line before other output.
  void clear() {
    if (dirty_) out_ << "\n";
    dirty_ = false;
  }

 private:
  std::ostream& out_;
  bool bar_;
  int64_t total_;
  Clock::time_point last_{};
  bool dirty_ = false;
};

}  // namespace

int run_training(const RunConfig& given, std::ostream& out_all, std::ostream& err, const std::atomic<bool>* stop) {
  // Data-parallel training (torchrun): rank 0 prints, logs and writes; every rank reports errors.
  std::unique_ptr<Communicator> comm;
  std::ostream discard(nullptr);  // ranks other than 0 print nothing but errors
  std::ostream* out_ptr = &out_all;
  bool agreed = false;  // the ranks have compared the outcome of their input checks
  // Every rank checks the input; the first rank that finds a problem puts its message in the
  // store, and every rank reports that same message and stops.
  auto agree_on_input = [&](const std::string* error) -> std::optional<std::string> {
    if (!comm || agreed) return error ? std::optional<std::string>(*error) : std::nullopt;
    agreed = true;
    if (error) comm->store_set("input_error/" + std::to_string(comm->rank()), *error);
    const auto [failed, first] = comm->any(error ? 1 : 0, torch::kCPU);
    if (!failed) return std::nullopt;
    const auto message = comm->store_get_nowait("input_error/" + std::to_string(first));
    return message.value_or("rank " + std::to_string(first) + " found a problem with the input") +
           (comm->world_size() > 1 ? " [rank " + std::to_string(first) + " of " + std::to_string(comm->world_size()) + "]" : "");
  };
  // One message on stderr; while the ranks still agree on input, the first failing rank's.
  auto report = [&](const std::string& prefix, const std::string& message) {
    std::string text = message;
    if (comm && !agreed) {
      try {
        text = agree_on_input(&message).value_or(message);
      } catch (const std::exception&) {
        // the others are gone already: report our own
      }
    }
    err << prefix << text << "\n" << std::flush;
  };
  try {
    RunConfig config = given;
    std::optional<DistributedEnv> denv;
    try {
      denv = distributed_env_from_environment();
    } catch (const std::invalid_argument& e) {
      throw InputError(std::string("torchrun environment: ") + e.what());
    }
    if (denv && denv->rank != 0) out_ptr = &discard;
    std::ostream& out = *out_ptr;
    // ---- A resumed run takes the options it was started with from its run folder. ----
    fs::path resume_path;
    if (!config.resume.empty()) {
      resume_path = config.resume == "latest" ? config.out_dir / "checkpoints" / "resume.safetensors"
                                              : fs::path(config.resume);
      if (!fs::exists(resume_path))
        throw InputError(resume_path.string() + ": no resume file here" +
                         (config.resume == "latest" ? " (--resume latest looks in <out>/checkpoints; check --out)" : ""));
      // <out>/run.json; for a resume file from another run folder, that folder's.
      fs::path run_file = config.out_dir / kRunFile;
      if (!fs::exists(run_file)) run_file = resume_path.parent_path().parent_path() / kRunFile;
      if (fs::exists(run_file)) {
        apply_run_file(run_file, config);
      } else if (config.train_dir.empty()) {
        throw InputError("--train-dir is required: " + (config.out_dir / kRunFile).string() +
                         " (written by runs since this version) is missing, so give the run's --train-dir "
                         "(and --val-dir, --device, ...) again");
      }
    }

    // ---- Everything that can be wrong with the input is checked before the first iteration. ----
    if (config.print_every < 1 || config.sample_every < 1 || config.save_every < 1)
      throw InputError("--print-every, --sample-every and --save-every must be >= 1");
    if (config.workers < 0) throw InputError("--workers must be >= 0");
    if (config.val_batch_size < 1 || config.sample_outs < 1)
      throw InputError("--val-batch-size and --sample-outs must be >= 1");
    if (config.train_dir.empty()) throw InputError("--train-dir is required (one sub-folder of images per domain)");
    if (config.eval_every < 0) throw InputError("--eval-every must be >= 0 (0 = no evaluation)");
    if (config.eval_every > 0 && config.val_dir.empty())
      throw InputError("--eval-every needs --val-dir: the evaluation translates validation images (one sub-folder "
                       "per domain, as --train-dir), never the training images");
    // Weight files given on this command line without an evaluation are a mistake; taken from a
    // resumed run's run.json they are just unused (`--eval-every 0` turns a run's evaluation off).
    for (const char* name : {"inception", "lpips", "landmarks"})
      if (config.eval_every == 0 && config.explicit_run_options.count(name))
        throw InputError(dashed(name) + " is for the evaluation during training: give --eval-every N too");
    torch::Device device(torch::kCPU);
    try {
      if (denv) {
        // One process per device: rank r of a node trains on cuda:LOCAL_RANK.
        if (config.device != "auto" && config.device != "cuda" && config.device != "cpu")
          throw std::invalid_argument("--device " + config.device + ": under torchrun use auto, cuda (each rank takes "
                                      "cuda:LOCAL_RANK) or cpu");
        const bool cuda = config.device == "cuda" || (config.device == "auto" && torch::cuda::is_available());
        device = resolve_device(cuda ? "cuda:" + std::to_string(denv->local_rank) : "cpu");
      } else {
        device = resolve_device(config.device);
      }
    } catch (const std::exception& e) {
      const std::string what = e.what();
      // model/device.h's messages do not say which option they are about.
      throw InputError(what.rfind("--device", 0) == 0 ? what : "--device: " + what);
    }
    if (denv) {
      // Rendezvous before the remaining checks, so that an input error on one rank stops all.
      comm = make_communicator(*denv, device, std::chrono::seconds(config.dist_timeout_s));
      out << "Distributed: rank " << comm->rank() << " of " << comm->world_size() << " (" << comm->backend() << ", "
          << device.str() << "); a rank that stops or hangs ends the run within " << config.dist_timeout_s << " s\n"
          << std::flush;
    }
    if (denv && config.eval_every > 0)
      throw InputError("--eval-every is not available under torchrun: the other ranks would wait for rank 0's "
                       "evaluation inside the next all-reduce; train without it and measure the model files with "
                       "starganv2-eval");
    if (config.precision == Precision::kBFloat16 && !device.is_cuda())
      throw InputError("--precision bf16 is autocast on CUDA; the device is " + device.str() + " (use fp32)");

    TrainOptions options = config.train;
    std::optional<ResumeFile> resume;
    if (!config.resume.empty()) {
      const fs::path& path = resume_path;
      resume = read_resume_file(path);
      for (const auto& name : config.explicit_options) {
        const auto it = identity_options().find(name);
        if (it == identity_options().end()) continue;
        if (it->second(config.train) != it->second(resume->options))
          throw InputError(dashed(name) + " " + it->second(config.train) + " differs from the resumed run's " +
                           it->second(resume->options) + " (" + path.string() + "); drop the option to keep the run's value");
      }
      const int64_t total_iters = config.explicit_options.count("total_iters") ? config.train.total_iters
                                                                               : resume->options.total_iters;
      options = resume->options;
      options.total_iters = total_iters;
    }

    auto warn = [&](const std::string& line) { err << line << "\n"; };
    ScanOptions scan;
    scan.verify = config.verify_images;
    scan.workers = std::max(1, config.workers);
    out << "Scanning " << config.train_dir.string() << " ...\n" << std::flush;
    const ImageFolder train = scan_image_folder(config.train_dir, scan, warn);
    std::string per_domain;
    for (size_t d = 0; d < train.domains.size(); ++d)
    {
      if (d) per_domain += ", ";
      per_domain += train.domains[d] + " " + std::to_string(train.files[d].size());
    }
    out << "  " << train.num_images() << " images in " << train.domains.size() << " domains (" << per_domain << ")";
    if (!train.skipped.empty()) out << "; " << train.skipped.size() << " unreadable image(s) skipped";
    out << "\n";
    if (train.domains.size() < 2)
      throw InputError(config.train_dir.string() + ": " + std::to_string(train.domains.size()) +
                       " domain folder" + (train.domains.size() == 1 ? " (" + train.domains[0] + ")" : std::string("s")) +
                       "; StarGAN v2 translates between domains, so it needs at least 2 (one sub-folder of images "
                       "per domain)");
    options.model.num_domains = static_cast<int64_t>(train.domains.size());
    if (resume && train.domains != resume->domains)
      throw InputError(config.train_dir.string() + ": domains " + nlohmann::json(train.domains).dump() +
                       " do not match the resumed run's " + nlohmann::json(resume->domains).dump());
    int64_t start_batch = 0;
    if (resume) start_batch = TrainLoader::position_from_state(resume->sampler_state, train);

    std::optional<ImageFolder> val_storage;
    if (!config.val_dir.empty()) {
      val_storage = scan_image_folder(config.val_dir, scan, warn);
      if (val_storage->domains != train.domains)
        throw InputError(config.val_dir.string() + ": domains " + nlohmann::json(val_storage->domains).dump() +
                         " differ from the training folder's " + nlohmann::json(train.domains).dump());
    }
    const ImageFolder& val = val_storage ? *val_storage : train;

    try {
      options.validate();
    } catch (const std::invalid_argument& e) {
      throw InputError(e.what());
    }
    const int world = comm ? comm->world_size() : 1, rank = comm ? comm->rank() : 0;
    if (options.batch_size % world != 0)
      throw InputError("--batch-size " + std::to_string(options.batch_size) + " (the global batch) is not divisible by "
                       "the world size " + std::to_string(world) + ": every rank takes batch-size / world-size samples");

    FAN fan{nullptr};
    if (options.model.w_hpf > 0) {
      if (resume) {
        fan = fan_from_resume(*resume);
      } else {
        if (config.fan.empty())
          throw InputError("w_hpf " + nlohmann::json(options.model.w_hpf).dump() +
                           " needs the FAN face-mask weights: pass --fan wing.safetensors, made once from the "
                           "authors' wing.ckpt with `" + converter_command() +
                           " --wing wing.ckpt --out wing.safetensors`, or use --w-hpf 0");
        fan = load_fan(config.fan);
      }
    }

    std::unique_ptr<TrainingEvaluator> evaluator;
    if (rank == 0 && config.eval_every > 0) {
      EvalSetup e;
      e.domains = train.domains;
      e.val_dir = config.val_dir;
      e.train_dir = config.train_dir;
      e.eval_dir = config.out_dir / "eval";
      e.images_per_domain = config.eval_images;
      e.img_size = options.model.img_size;
      e.batch_size = config.val_batch_size;
      e.seed = options.seed;
      e.inception = config.inception;
      e.lpips = config.lpips;
      e.landmarks = config.landmarks;
      e.device = device;
      try {
        evaluator = std::make_unique<TrainingEvaluator>(e, val);
      } catch (const std::invalid_argument& x) {
        throw InputError(x.what());
      }
      if (!TrainingEvaluator::has_face_metrics())
        out << "Note: this starganv2-train was built without align/ (dlib): --eval-every logs diversity"
            << (config.inception.empty() ? "" : ", FID and LPIPS") << ", not face found or pose error\n";
    }

    const fs::path ckpt_dir = config.out_dir / "checkpoints", sample_dir = config.out_dir / "samples";
    if (rank == 0) {
      std::error_code ec;
      fs::create_directories(ckpt_dir, ec);
      if (!ec) fs::create_directories(sample_dir, ec);
      if (ec) throw InputError(config.out_dir.string() + ": cannot create the run folder: " + ec.message());
    }

    std::optional<SampleInputs> sample_in;
    if (rank == 0) sample_in = sample_inputs(val, options.model.img_size, config.val_batch_size, options.seed);
    std::ofstream log;
    if (rank == 0) {
      log.open(config.out_dir / "log.jsonl", std::ios::app);
      if (!log) throw InputError((config.out_dir / "log.jsonl").string() + ": cannot open for appending");
    }
    if (const auto problem = agree_on_input(nullptr)) throw InputError(*problem);

    // ---- Build and, when resuming, restore. ----
    Solver solver(options, device, config.precision, fan);
    if (resume) {
      restore_solver(*resume, solver);
      out << "Resumed " << resume->path.string() << " at iteration " << solver.step() << " (lambda_ds "
          << solver.lambda_ds() << ")\n";
    }
    if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);  // as the official main.py
    std::unique_ptr<GradientBuckets> buckets;
    if (comm) {
      buckets = std::make_unique<GradientBuckets>(*comm, solver.nets());
      solver.set_gradient_sync(buckets.get());
      solver.set_ema_enabled(rank == 0);  // only rank 0 writes the EMA networks
      solver.set_replica_rank(rank);
      // ADA: every rank adjusts p from the signs of all ranks, so the replicas keep one p.
      solver.set_ada_reducer([&comm](double sum, double count) {
        const std::vector<double> m = comm->mean({sum, count}, torch::kCPU);
        return std::pair<double, double>(m[0] * comm->world_size(), m[1] * comm->world_size());
      });
      // Same seed, same init or resume file: the replicas must start bit-identical.
      check_replicas(*comm, solver.nets(), solver.step(), torch::kCPU);
    }
    if (rank == 0) {
      write_text_file(config.out_dir / "options.json", nlohmann::json::parse(options.to_json()).dump(2) + "\n");
      write_text_file(config.out_dir / kRunFile, run_file_text(config));
    }

    LoaderOptions lo;
    lo.img_size = options.model.img_size;
    lo.batch_size = options.batch_size;
    lo.randcrop_prob = options.randcrop_prob;
    lo.seed = options.seed;
    lo.workers = config.workers;
    lo.rank = rank;
    lo.world_size = world;
    TrainLoader loader(train, lo, start_batch);

    const bool tty = rank == 0 && config.progress_bar && isatty(STDOUT_FILENO);
    Progress progress(out, tty, options.total_iters);
    out << "Training " << options.model.to_json() << " on " << device.str() << " (" << to_string(config.precision)
        << "), iterations " << solver.step() << " -> " << options.total_iters << ", out " << config.out_dir.string()
        << (comm ? ", " + std::to_string(world) + " ranks x batch " + std::to_string(options.batch_size / world) : std::string())
        << "\n"
        << size_line(solver) << "\n";
    if (solver.augment_policies() != 0) {
      out << "Augmenting D's inputs: " << diff_augment_name(solver.augment_policies());
      if (options.ada_target > 0)
        out << ", ADA target " << options.ada_target << " (p now " << solver.augment_p() << ")";
      else
        out << ", p " << solver.augment_p();
      out << "\n";
    }
    out << std::flush;

    auto save = [&] {
      if (rank != 0) return;
      const std::string name = step_name(solver.step());
      write_model_file(ckpt_dir / ("model-" + name + ".safetensors"), solver, train.domains);
      // The sampler position is the iteration: several ranks may have drawn the next batch
      // already when they agree to stop.
      auto sampler = nlohmann::ordered_json::parse(loader.state_json());
      sampler["position"] = solver.step();
      write_resume_file(ckpt_dir / "resume.safetensors", solver, train.domains, sampler.dump());
      keep_newest_models(ckpt_dir, config.keep_last, err);
    };

    const auto run_start = Clock::now();
    auto window_start = run_start;
    int64_t window_steps = 0;
    double it_per_s = 0;
    int64_t last_saved = resume ? solver.step() : -1;
    while (solver.step() < options.total_iters) {
      bool stopping = stop && stop->load();
      std::optional<ImageBatch> images;
      std::string data_error;
      if (!stopping || comm) {
        try {
          images = loader.next();
        } catch (const DataError& e) {
          if (!comm) throw;
          data_error = e.what();
        }
      }
      if (comm) {
        // Every iteration the ranks agree on Ctrl-C (so that all stop at the same iteration and
        // rank 0 saves) and on a data error on any rank (reported by all, the first one's words).
        if (!data_error.empty()) comm->store_set("data_error/" + std::to_string(rank), data_error);
        // On the CPU (Gloo), so the host does not wait for the GPU's previous iteration.
        at::Tensor flags = at::tensor({static_cast<int64_t>(stopping), data_error.empty() ? int64_t{0} : int64_t{world - rank}},
                                      at::TensorOptions().dtype(at::kLong));
        comm->allreduce(flags, ReduceOp::kMax);
        stopping = flags[0].item<int64_t>() != 0;
        if (const int64_t e = flags[1].item<int64_t>(); e != 0) {
          const int first = world - static_cast<int>(e);
          throw DataError(comm->store_get_nowait("data_error/" + std::to_string(first)).value_or("a data error") +
                          " [rank " + std::to_string(first) + " of " + std::to_string(world) + "]");
        }
      }
      if (stopping) {
        progress.clear();
        save();
        if (comm) {
          // The others wait for rank 0's resume file: torchrun stops every rank once one exits.
          at::Tensor done = at::zeros({1});
          comm->allreduce(done, ReduceOp::kMax);
        }
        out << "Stopped at iteration " << solver.step() << "; resume with: " << shell_word(config.program)
            << " --resume latest --out " << shell_word(config.out_dir.string()) << "\n";
        return kExitStopped;
      }
      Batch batch;
      batch.x_real = images->x_src;
      batch.y_org = images->y_src;
      batch.x_ref = images->x_ref;
      batch.x_ref2 = images->x_ref2;
      batch.y_trg = images->y_ref;
      std::tie(batch.z_trg, batch.z_trg2) =
          sample_latents(options.seed, solver.step(), options.batch_size, options.model.latent_dim);
      if (comm) {
        const int64_t n = options.batch_size / world;
        batch.z_trg = batch.z_trg.narrow(0, rank * n, n);
        batch.z_trg2 = batch.z_trg2.narrow(0, rank * n, n);
      }
      const StepLosses losses = solver.train_step(batch);
      const int64_t step = solver.step();
      ++window_steps;

      if (comm && config.replica_check_every > 0 && step % config.replica_check_every == 0)
        check_replicas(*comm, solver.nets(), step, torch::kCPU);
      const bool print = step % config.print_every == 0;
      std::vector<std::pair<std::string, double>> named;
      if (print) {
        named = losses.named();
        if (comm) {
          // The loss of the global batch: the mean of the ranks' means.
          std::vector<double> v;
          for (const auto& [k, x] : named) v.push_back(x);
          v = comm->mean(v, torch::kCPU);
          for (size_t i = 0; i < v.size(); ++i) named[i].second = v[i];
        }

        const auto now = Clock::now();
        it_per_s = window_steps / std::chrono::duration<double>(now - window_start).count();
        window_start = now;
        window_steps = 0;
        nlohmann::ordered_json j;
        j["step"] = step;
        j["time"] = static_cast<int64_t>(std::time(nullptr));
        j["elapsed_s"] = std::chrono::duration<double>(now - run_start).count();
        j["it_per_s"] = it_per_s;
        for (const auto& [k, v] : named) j[k] = v;
        j["G/lambda_ds"] = solver.lambda_ds();
        if (solver.augment_policies() != 0) {
          // The probability in use and r_t, the mean sign of D on augmented reals at the last
          // adjustment (ADA raises p while r_t is above the target).
          j["augment/p"] = solver.augment_p();
          if (options.ada_target > 0) j["augment/rt"] = solver.ada_state().last_rt;
        }
        j["rss_mb"] = rss_mb();
        add_device_memory(j, device);
        if (rank == 0) log << j.dump() << "\n" << std::flush;
        if (!tty) {
          std::ostringstream line;
          line << "Elapsed time [" << hms(std::chrono::duration<double>(now - run_start).count()) << "], Iteration ["
               << step << "/" << options.total_iters << "], " << it_per_s << " it/s";
          char text[64];
          for (const auto& [k, v] : named) {
            std::snprintf(text, sizeof text, " %s: [%.4f]", k.c_str(), v);
            line << text;
          }
          std::snprintf(text, sizeof text, " G/lambda_ds: [%.4f]", solver.lambda_ds());
          line << text;
          for (const char* key : {"augment/p", "augment/rt"})
            if (j.contains(key)) {
              std::snprintf(text, sizeof text, " %s: [%.4f]", key, j[key].get<double>());
              line << text;
            }
          out << line.str() << "\n" << std::flush;
        }
      }
      if (window_steps > 0 && !print) {
        const double dt = std::chrono::duration<double>(Clock::now() - window_start).count();
        if (dt > 0) it_per_s = window_steps / dt;
      }
      progress.update(step, it_per_s, print ? &named : nullptr);

      const bool sample = rank == 0 && step % config.sample_every == 0;
      if (sample) {
        for (const auto& grid : debug_grids(solver, *sample_in, options.seed, config.sample_outs))
          write_png(sample_dir / (step_name(step) + "_" + grid.name + ".png"), grid.image);
      }
      const bool evaluate = evaluator && step % config.eval_every == 0;
      if (evaluate) {
        progress.clear();
        const auto t0 = Clock::now();
        const EvalFigures figures = evaluator->evaluate(solver);
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        // A line of its own: the loss lines keep their keys, and a reader finds the figures by "eval/".
        nlohmann::ordered_json j;
        j["step"] = step;
        j["time"] = static_cast<int64_t>(std::time(nullptr));
        j["eval_s"] = seconds;
        for (const auto& [k, v] : figures) j[k] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
        log << j.dump() << "\n" << std::flush;
        out << "Evaluation at iteration " << step << " (" << hms(seconds) << "): " << TrainingEvaluator::summary(figures)
            << "\n" << std::flush;
        // The evaluation's time is not the training's speed.
        window_start += Clock::now() - t0;
      }
      if (sample || evaluate) write_curves(config.out_dir / "log.jsonl", sample_dir / kCurvesFile);
      if (step % config.save_every == 0) {
        save();
        last_saved = step;
      }
    }
    progress.clear();
    if (last_saved != solver.step()) save();
    if (rank == 0) write_curves(config.out_dir / "log.jsonl", sample_dir / kCurvesFile);
    out << "Done: " << options.total_iters << " iterations; model file "
        << (ckpt_dir / ("model-" + step_name(solver.step()) + ".safetensors")).string() << "\n";
    return kExitDone;
  } catch (const InputError& e) {
    report("starganv2-train: error: ", e.what());
  } catch (const DataError& e) {
    report("starganv2-train: error: ", e.what());
  } catch (const CheckpointError& e) {
    report("starganv2-train: error: ", e.what());
  } catch (const std::invalid_argument& e) {
    report("starganv2-train: error: ", e.what());
  } catch (const CommunicationError& e) {
    err << "starganv2-train: error: rank " << (comm ? comm->rank() : 0) << " lost contact with the other ranks (one "
        << "stopped, crashed or hung; the timeout is " << (comm ? comm->timeout().count() / 1000 : 0) << " s): " << e.what()
        << "\n";
  } catch (const c10::Error& e) {
    report("starganv2-train: error in LibTorch: ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    report("starganv2-train: error: ", e.what());
  }
  return kExitBadInput;
}

}  // namespace starganv2
