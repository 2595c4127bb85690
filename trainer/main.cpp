// starganv2-train: the official StarGAN v2 training (clovaai/stargan-v2 core/solver.py) as a
// standalone program. See --help.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "benchmark.h"
#include "distributed.h"
#include "options.h"
#include "model/device.h"
#include "run.h"
#include "solver.h"

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  // First Ctrl-C: finish the iteration and save; a second one ends the process at once.
  g_stop = true;
  std::signal(SIGINT, SIG_DFL);
}

// Under torchrun a Ctrl-C reaches every rank twice (from the terminal and forwarded by the
// launcher), so a rank keeps saving through repeats; the ranks agree on the stop iteration and
// rank 0 writes the resume file. torchrun kills what is left 30 s after forwarding.
extern "C" void on_sigint_distributed(int) { g_stop = true; }

// torchrun sends SIGTERM to the remaining ranks when one fails: say why this rank ends.
extern "C" void on_sigterm_distributed(int) {
  const char msg[] = "starganv2-train: stopped by SIGTERM (torchrun ends every rank when one fails or is stopped)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(143);
}

}  // namespace

int main(int argc, char** argv) {
  using starganv2::TrainOptions;
  starganv2::RunConfig config;
  TrainOptions& o = config.train;

  CLI::App app{
      "starganv2-train: train StarGAN v2 exactly as the official code (clovaai/stargan-v2), resumable.\n"
      "Writes <out>/checkpoints/model-<step>.safetensors (EMA networks for the starganv2 element),\n"
      "<out>/checkpoints/resume.safetensors (everything needed to continue), <out>/samples/*.png and\n"
      "<out>/log.jsonl, <out>/samples/curves.png (losses and --eval-every figures over iterations), <out>/options.json\n"
      "and <out>/run.json (the data folders and run options).\n"
      "Ctrl-C saves a resume file and stops; `--resume latest --out <out>` alone continues (options given\n"
      "again override the run's; hyper-parameters must match)."};
  app.footer(
      "Exit codes: 0 done; 1 bad input (an unknown or invalid option, a missing or unusable folder or file,\n"
      "a resume mismatch) or a failure, with one message on stderr; 130 stopped by Ctrl-C after saving the\n"
      "resume file.");
  app.option_defaults()->always_capture_default();
  // A repeated option keeps its last value, as most command lines do (handy after --preset or in scripts).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  std::vector<std::string> presets;
  std::string precision = "fp32";
  bool benchmark = false, no_verify = false, no_progress = false;
  int benchmark_iters = 10, benchmark_warmup = 3;
  int64_t num_domains = 2;

  // name (official spelling) -> option, for presets and the resume consistency check
  std::map<std::string, CLI::Option*> hyper;
  auto hp = [&](const std::string& name, auto& value, const std::string& help) {
    std::string flag = "--" + name;
    for (char& c : flag)
      if (c == '_') c = '-';
    hyper[name] = app.add_option(flag, value, help);
    return hyper[name];
  };

  app.add_option("--train-dir", config.train_dir, "Training images: one sub-folder per domain (domain names = sorted folder names)");
  app.add_option("--val-dir", config.val_dir, "Validation images for the sample grids and --eval-every, same domains (sample grids default to --train-dir)");
  app.add_option("--out", config.out_dir, "Run folder for checkpoints, samples and the log");
  app.add_option("--resume", config.resume, "Continue a run: a resume file, or 'latest' for <out>/checkpoints/resume.safetensors");
  app.add_option("--fan", config.fan, "FAN weights (a safetensors file with fan.* tensors, e.g. converted wing.ckpt); required when w_hpf > 0");
  app.add_option("--preset", presets,
                 "Settings by name, comma-separated or repeated; explicit options win. Data: celeba_hq (the paper's: "
                 "256², w_hpf 1, lambda_ds 1) or afhq (256², w_hpf 0, lambda_ds 2). Network size: official (the "
                 "default: 2^14/img_size channels at full resolution, max-conv-dim 512, hidden-dim 512, style-dim 64, "
                 "latent-dim 16), small (base-dim 32, max-conv-dim 128, hidden-dim 256: a model that trains in hours "
                 "on a CPU) or tiny (base-dim 8, max-conv-dim 32, hidden-dim 32, style-dim 16, latent-dim 8: a try in "
                 "minutes). small and tiny keep their width at any --img-size; --base-dim 0 scales it as the official")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::IsMember({"celeba_hq", "afhq", "official", "small", "tiny"}));

  hp("img_size", o.model.img_size, "Image resolution (power of two >= 32)");
  hp("batch_size", o.batch_size, "Batch size");
  hp("total_iters", o.total_iters, "Number of total iterations");
  hp("lambda_reg", o.lambda_reg, "Weight of the R1 regularisation");
  hp("lambda_cyc", o.lambda_cyc, "Weight of the cycle consistency loss");
  hp("lambda_sty", o.lambda_sty, "Weight of the style reconstruction loss");
  hp("lambda_ds", o.lambda_ds, "Initial weight of the diversity sensitive loss (decays linearly to 0)");
  hp("ds_iter", o.ds_iter, "Iterations over which lambda_ds decays to 0");
  hp("w_hpf", o.model.w_hpf, "Weight of the high-pass filtered skips (0 = none, no FAN)");
  hp("lr", o.lr, "Learning rate of G, E and D");
  hp("f_lr", o.f_lr, "Learning rate of F (mapping network)");
  hp("beta1", o.beta1, "Adam beta1");
  hp("beta2", o.beta2, "Adam beta2");
  hp("weight_decay", o.weight_decay, "Adam L2 weight decay (added to the gradient, as torch.optim.Adam)");
  hp("latent_dim", o.model.latent_dim, "Latent code dimension");
  hp("style_dim", o.model.style_dim, "Style code dimension");
  hp("max_conv_dim", o.model.max_conv_dim, "Channel cap of G, E and D");
  hp("hidden_dim", o.model.hidden_dim, "Width of the mapping network");
  if (int64_t* base_dim = starganv2::base_dim_of(o.model))
    hp("base_dim", *base_dim, "Channels of G, E and D at full resolution; 0 = official 2^14/img_size (for tiny test models)");
  hp("randcrop_prob", o.randcrop_prob, "Probability of the random resized crop");
  hp("seed", o.seed, "Seed of every random draw (init, sampling, augmentation, latents)");
  hp("ema_beta", o.ema_beta, "Decay of the exponential moving average of G, F, E (official 0.999)");
  hp("diffaug", o.diffaug,
     "Not in the official code: augment every image D sees (real and fake, D and G steps, R1 through it) with "
     "DiffAugment policies: color, translation, cutout, comma-separated, or none. For small datasets (a few hundred "
     "images or fewer), where D otherwise overfits");
  hp("augment_p", o.augment_p, "Probability of each --diffaug policy per image while ADA is off");
  hp("ada_target", o.ada_target,
     "Adaptive augmentation (ADA): adapt the probability, starting at 0, so that the mean sign of D on augmented reals "
     "stays near this target (the ADA paper's 0.6); 0 = off. Needs --diffaug");
  hp("ada_interval", o.ada_interval, "Iterations between ADA adjustments");
  hp("ada_kimg", o.ada_kimg, "ADA speed: thousands of real images over which the probability can go from 0 to 1");
  hp("recon_warmup", o.recon_warmup,
     "Not in the official code: the first N iterations train only G and E, to give back each image from its own "
     "style code (L1, logged as W/recon), before the official iterations. For a few dozen to hundreds of images, "
     "where G otherwise loses the face's layout to its upsampling's block grid for thousands of iterations; 0 = off");

  app.add_option("--print-every", config.print_every, "Log losses every N iterations (log.jsonl; plain lines when not a terminal)");
  app.add_option("--sample-every", config.sample_every, "Write sample grids every N iterations");
  app.add_option("--save-every", config.save_every, "Write the model and resume files every N iterations");
  app.add_option("--keep-last", config.keep_last, "Keep only the newest N model files in <out>/checkpoints (0 = keep all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--device", config.device, "auto, cpu, cuda or cuda:N");
  app.add_option("--precision", precision, "fp32, or bf16 (autocast on CUDA; weights stay float32)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--workers", config.workers, "Image decoding threads (0 = decode on the training thread)");
  app.add_option("--val-batch-size", config.val_batch_size, "Source and reference images per sample grid");
  app.add_option("--sample-outs", config.sample_outs, "Latent rows per domain in the latent sample grids");
  app.add_option("--eval-every", config.eval_every,
                 "Evaluate the EMA networks every N iterations (0 = never; needs --val-dir): diversity, face found, "
                 "pose error and upsampling seams (dlib and OpenCV, as `starganv2-eval faces`) of --eval-images sources per domain, and FID and LPIPS "
                 "by the official protocol with --inception and --lpips; logged to log.jsonl (\"eval/...\" keys) and "
                 "drawn with the losses in <out>/samples/curves.png")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--eval-images", config.eval_images,
                 "Sources per domain of --val-dir (the first, sorted) for --eval-every's diversity and face metrics; "
                 "each is translated into every domain with 3 fixed latent styles")
      ->check(CLI::PositiveNumber);
  app.add_option("--inception", config.inception,
                 "Inception-v3 weights for FID at each --eval-every (as `starganv2-eval official --inception`; with --lpips); "
                 "the official JSON files go to <out>/eval/");
  app.add_option("--lpips", config.lpips, "AlexNet and linear weights for LPIPS at each --eval-every (with --inception)");
  app.add_option("--landmarks", config.landmarks,
                 "dlib's 68-point shape predictor (.dat) for --eval-every's pose error (default: "
                 "/usr/share/dlib/shape_predictor_68_face_landmarks.dat)");
  app.add_flag("--no-verify", no_verify, "Do not decode every image once before training");
  app.add_flag("--no-progress", no_progress, "No progress bar on a terminal (plain lines instead)");
  app.add_option("--dist-timeout", config.dist_timeout_s,
                 "Several ranks (torchrun): seconds after which a rank waiting for a stopped or hung peer gives up with "
                 "an error (rendezvous and every all-reduce)")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}));
  app.add_option("--replica-check-every", config.replica_check_every,
                 "Several ranks: compare a hash of the weights across ranks every N iterations (0 = never)")
      ->check(CLI::NonNegativeNumber);

  app.add_flag("--benchmark", benchmark,
               "Time iterations on synthetic data instead of training (default config: official 256², batch 8, "
               "w_hpf 1); prints s/iter for fp32 and, on CUDA, bf16");
  app.add_option("--benchmark-iters", benchmark_iters, "Timed iterations per precision (median reported)");
  app.add_option("--benchmark-warmup", benchmark_warmup, "Untimed iterations first");
  app.add_option("--num-domains", num_domains, "Domains of the synthetic benchmark data (training takes them from --train-dir)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a "parse error" with exit code 0; every real one is bad input (exit 1).
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "starganv2-train: error: " << e.what() << " (see --help)\n";
    return starganv2::kExitBadInput;
  }
  config.program = argc > 0 ? argv[0] : "starganv2-train";
  // Run options the command line gave; a resumed run takes the others from <out>/run.json.
  for (const char* name : starganv2::kRunOptionNames) {
    std::string flag = std::string("--") + name;
    for (char& c : flag)
      if (c == '_') c = '-';
    if (std::string(name) == "verify_images") flag = "--no-verify";
    if (app.get_option(flag)->count() > 0) config.explicit_run_options.insert(name);
  }

  for (const std::string& preset : presets) {
    // Each preset sets only what it is about (data settings or network size), so one of each
    // combines; later presets win over earlier ones, explicit options over both.
    std::map<std::string, std::function<void()>> apply;
    try {
      if (starganv2::is_size_preset(preset)) {
        const starganv2::ModelConfig p = starganv2::size_preset(preset, o.model);
        apply = {
            {"style_dim", [&, p] { o.model.style_dim = p.style_dim; }},
            {"latent_dim", [&, p] { o.model.latent_dim = p.latent_dim; }},
            {"max_conv_dim", [&, p] { o.model.max_conv_dim = p.max_conv_dim; }},
            {"hidden_dim", [&, p] { o.model.hidden_dim = p.hidden_dim; }},
            {"base_dim", [&, p] { o.model.base_dim = p.base_dim; }},
        };
      } else {
        const TrainOptions p = starganv2::preset_options(preset);
        apply = {
            {"img_size", [&, p] { o.model.img_size = p.model.img_size; }},
            {"w_hpf", [&, p] { o.model.w_hpf = p.model.w_hpf; }},
            {"lambda_ds", [&, p] { o.lambda_ds = p.lambda_ds; }},
            {"lambda_reg", [&, p] { o.lambda_reg = p.lambda_reg; }},
            {"lambda_sty", [&, p] { o.lambda_sty = p.lambda_sty; }},
            {"lambda_cyc", [&, p] { o.lambda_cyc = p.lambda_cyc; }},
        };
      }
    } catch (const std::invalid_argument& e) {
      std::cerr << "starganv2-train: error: " << e.what() << "\n";
      return starganv2::kExitBadInput;
    }
    for (const auto& [name, set] : apply)
      if (hyper.at(name)->count() == 0) set();
  }
  for (const auto& [name, opt] : hyper)
    if (opt->count() > 0) config.explicit_options.insert(name);
  config.verify_images = !no_verify;
  config.progress_bar = !no_progress;

  try {
    config.precision = starganv2::parse_training_precision(precision);
  } catch (const std::invalid_argument& e) {
    std::cerr << "starganv2-train: error: " << e.what() << "\n";
    return starganv2::kExitBadInput;
  }

  if (benchmark) {
    try {
      starganv2::BenchmarkOptions b;
      b.train = o;
      b.train.model.num_domains = num_domains;
      b.device = starganv2::resolve_device(config.device);
      b.dist_timeout_s = config.dist_timeout_s;
      b.iters = benchmark_iters;
      b.warmup = benchmark_warmup;
      b.precisions = app.get_option("--precision")->count() > 0
                         ? std::vector<starganv2::Precision>{config.precision}
                         : std::vector<starganv2::Precision>{starganv2::Precision::kFloat32, starganv2::Precision::kBFloat16};
      b.train.validate();
      starganv2::run_benchmark(b, std::cout);
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "starganv2-train: error: " << e.what() << "\n";
      return starganv2::kExitBadInput;
    }
  }

  if (std::getenv("WORLD_SIZE")) {
    std::signal(SIGINT, on_sigint_distributed);
    std::signal(SIGTERM, on_sigterm_distributed);
  } else {
    std::signal(SIGINT, on_sigint);
  }
  return starganv2::run_training(config, std::cout, std::cerr, &g_stop);
}
