// A whole training run as starganv2-train performs it: checks the input before anything
// starts, then loops over iterations with data decoded ahead, logging, sample grids,
// checkpoints and exact resume.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <set>
#include <string>

#include "options.h"
#include "solver.h"

namespace starganv2 {

struct RunConfig {
  TrainOptions train;  // model.num_domains is taken from the training folder
  std::filesystem::path train_dir, val_dir;  // val_dir empty: sample grids use train_dir
  std::filesystem::path out_dir = "expr";    // <out>/checkpoints, <out>/samples, <out>/log.jsonl
  std::filesystem::path fan;                 // FAN weights (needed when w_hpf > 0 unless resuming)
  std::string resume;                        // "" (new run), "latest" or a resume file
  int64_t print_every = 10, sample_every = 5000, save_every = 10000;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  Precision precision = Precision::kFloat32;
  int workers = 4;
  int64_t val_batch_size = 8;  // images per row of the sample grids
  int64_t sample_outs = 10;    // latent rows per domain in the latent grids (official num_outs_per_domain)
  bool verify_images = true;
  // Evaluation during training (trainer/evaluation.h): every N iterations (0 = never) on the EMA
  // networks and val_dir (required): diversity, face kept and pose kept (builds with align/) of
  // eval_images sources per domain, and FID/LPIPS when both weight files are given; the figures go
  // to log.jsonl, the official JSON files to <out>/eval/. landmarks empty = align's default model.
  int64_t eval_every = 0;
  int64_t eval_images = 32;
  std::filesystem::path inception, lpips, landmarks;
  int64_t keep_last = 0;     // keep only the newest N model files (0 = all)
  bool progress_bar = true;  // only drawn when stdout is a terminal
  // Data-parallel training (started by torchrun): seconds after which a rank that waits for a
  // stopped or hung peer gives up (rendezvous and every collective), and how often the ranks
  // compare a hash of their weights (0 = never).
  int64_t dist_timeout_s = 300;
  int64_t replica_check_every = 1000;
  // Names of the hyper-parameter options given explicitly ("lr", "lambda_ds", ...). When resuming,
  // an explicit value that differs from the resumed run's is an error; the others are taken
  // from the resume file.
  std::set<std::string> explicit_options;
  // Names of the run options given explicitly (kRunOptionNames). When resuming, the others are
  // taken from <out>/run.json, so `--resume latest --out DIR` alone continues a run.
  std::set<std::string> explicit_run_options;
  // The program as the user ran it (argv[0]), for the command printed when a run is stopped.
  std::string program = "starganv2-train";
};

// The run options stored in <out>/run.json (besides the hyper-parameters, which the resume file
// holds): data folders (absolute), FAN file, logging, sampling, saving, device and decoding.
inline constexpr const char* kRunOptionNames[] = {"train_dir",  "val_dir",        "fan",         "print_every",
                                                  "sample_every", "save_every",   "device",      "precision",
                                                  "workers",    "val_batch_size", "sample_outs", "verify_images",
                                                  "keep_last",  "eval_every",     "eval_images", "inception",
                                                  "lpips",      "landmarks"};

// Exit codes of starganv2-train (and of run_training).
inline constexpr int kExitDone = 0;
inline constexpr int kExitBadInput = 1;  // bad options, folders or files, or a failure; one message on err
inline constexpr int kExitStopped = 130; // stopped by `stop` (Ctrl-C) after saving a resume file

// Returns the process exit code (kExit*).
int run_training(const RunConfig& config, std::ostream& out, std::ostream& err,
                 const std::atomic<bool>* stop = nullptr);


}  // namespace starganv2
