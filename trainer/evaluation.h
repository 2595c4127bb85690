// Evaluation during training (issue 23, `starganv2-train --eval-every N`): figures of the EMA
// networks on fixed images of the validation folder, logged beside the losses.
//  - diversity: every source translated into every domain with kEvalStyles fixed latent styles;
//    the mean absolute difference between the 8-bit outputs of two styles of one source, pixels in
//    [0, 1] (mode collapse shows as 0). The same figure as `starganv2-eval faces`.
//  - face kept and pose kept (when built with align/, i.e. dlib): align/face_metrics.h on those
//    translations, as `starganv2-eval faces` measures them: found rate and mean score of dlib's
//    detector, translated vs source, and the 68-landmark error in crop widths.
//  - FID and LPIPS (with the converted Inception and LPIPS weights): the official protocol,
//    model/official_eval.h, on the whole validation folder against the training folder; its JSON
//    files go to <out>/eval/ as `starganv2-eval official` writes them.
// The latent styles come from the run seed's own stream (RandomStream::kEvalStyle), drawn from a
// generator of their own: evaluating never touches what training draws, so a run with evaluation
// gives the same weights as one without.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "data/image_folder.h"
#include "solver.h"

namespace starganv2 {

// Latent styles per target domain: as many as `starganv2-eval faces` takes by default (seeds 1 2 3).
inline constexpr int64_t kEvalStyles = 3;

struct EvalSetup {
  std::vector<std::string> domains;       // the run's, in index order
  std::filesystem::path val_dir;          // sources (and, for FID/LPIPS, references)
  std::filesystem::path train_dir;        // FID's real images
  std::filesystem::path eval_dir;         // FID/LPIPS JSON files
  int64_t images_per_domain = 32;         // sources of diversity and the face metrics, per domain
  int64_t img_size = 256;
  int64_t batch_size = 8;                 // images per forward pass (and the official val_batch_size)
  uint64_t seed = 777;                    // the run seed
  std::filesystem::path inception, lpips; // both or neither: FID and LPIPS
  std::filesystem::path landmarks;        // dlib's 68-point model; empty = align's default
  c10::Device device = c10::kCPU;
};

// One figure of an evaluation: its log.jsonl key ("eval/diversity/mean", ...) and value (NaN
// where there is nothing to average, e.g. the score of faces when none was found).
using EvalFigures = std::vector<std::pair<std::string, double>>;

class TrainingEvaluator {
 public:
  // Whether this build measures face kept and pose kept (align/ was built: dlib and OpenCV).
  static bool has_face_metrics();

  // Decodes the sources (the first images_per_domain of each domain of `val`, sorted), measures
  // them once for the face metrics, and loads the shape model and the Inception/LPIPS weights,
  // so that every problem shows before training. Throws std::invalid_argument naming the option
  // and the problem.
  TrainingEvaluator(const EvalSetup& setup, const ImageFolder& val);
  ~TrainingEvaluator();
  TrainingEvaluator(const TrainingEvaluator&) = delete;
  TrainingEvaluator& operator=(const TrainingEvaluator&) = delete;

  // The figures of the solver's EMA networks now (FID/LPIPS files named by solver.step()).
  // Leaves the networks as it found them (modes, device, weights) and draws nothing from the
  // training's random streams.
  EvalFigures evaluate(Solver& solver);

  // One line for the console: the headline figures of `figures`.
  static std::string summary(const EvalFigures& figures);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Mean absolute difference of two batches of images in [-1, 1] once both are written as 8-bit
// pixels (as PNGs of them are), in [0, 1]: the diversity of two styles.
double pixel_distance(const at::Tensor& a, const at::Tensor& b);

}  // namespace starganv2
