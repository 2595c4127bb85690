// Files a training run writes: the model file the element loads (EMA networks, config, domain
// names, step; model/checkpoint.h format) and the resume file that holds everything needed to
// continue exactly (trained and EMA networks, D, every Adam state, the diversity weight, step,
// RNG state and the data sampler's state). Both are safetensors, written atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/fan.h"
#include "model/safetensors.h"
#include "options.h"
#include "solver.h"

namespace starganv2 {

inline constexpr const char* kResumeFormat = "starganv2-train-resume";
inline constexpr int kResumeFormatVersion = 1;

// "starganv2-train <version>", stored as the producer of every file.
std::string trainer_producer();

// Writes the EMA generator, mapping network and style encoder (+ the FAN when w_hpf > 0) with
// the config, domain names and solver.step(). Throws CheckpointError.
void write_model_file(const std::filesystem::path& path, const Solver& solver,
                      const std::vector<std::string>& domains);

// Writes everything a run needs to continue. `sampler_state` is the data pipeline's own JSON
// text (stored and handed back untouched). Throws CheckpointError.
void write_resume_file(const std::filesystem::path& path, const Solver& solver,
                       const std::vector<std::string>& domains, const std::string& sampler_state);

struct ResumeFile {
  std::filesystem::path path;
  TrainOptions options;
  std::vector<std::string> domains;
  int64_t step = 0;
  double lambda_ds = 0;
  std::string sampler_state;
  std::optional<AdaState> augment;  // with augmentation on: the probability and ADA's counts
  SafetensorsFile file;
};

// Reads and validates a resume file's metadata (format, version, options, domains, step,
// lambda_ds, sampler). Throws CheckpointError naming the file and the problem.
ResumeFile read_resume_file(const std::filesystem::path& path);

// The FAN stored in a resume file (w_hpf > 0), eval mode; null when w_hpf == 0.
FAN fan_from_resume(const ResumeFile& resume);

// Copies networks, EMA networks, Adam states, step, lambda_ds, the augmentation state and the global CPU RNG state into
// a solver built with resume.options. Every tensor must be present with its shape; throws
// CheckpointError naming the file and what is wrong.
void restore_solver(const ResumeFile& resume, Solver& solver);

// Loads the FAN from any safetensors file that holds "fan.*" (a converted model file or a
// converted wing.ckpt); F32/F16/BF16 accepted. Throws CheckpointError.
FAN load_fan(const std::filesystem::path& path);

// Copies "<prefix>.*" of `file` into module by official names: every tensor of the module must be
// present with its shape; with `strict`, names under the prefix that the module lacks are an
// error too. Throws CheckpointError naming `source`.
void load_prefixed(const SafetensorsFile& file, const std::string& source, torch::nn::Module& module,
                   const std::string& prefix, bool strict = true);

}  // namespace starganv2
