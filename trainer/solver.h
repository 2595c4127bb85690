// One StarGAN v2 training iteration exactly as the official solver (core/solver.py of
// clovaai/stargan-v2): two discriminator steps (latent, reference), a G+F+E step on latent
// styles, a G step on reference styles, the exponential moving average of G, F and E, then the
// linear decay of the diversity weight. LibTorch only.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adam.h>

#include <ATen/core/Generator.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <string_view>
#include <utility>
#include <vector>

#include "model/discriminator.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/mapping_network.h"
#include "model/style_encoder.h"
#include "model/precision.h"
#include "diff_augment.h"
#include "options.h"

namespace starganv2 {

// Training runs Precision::kFloat32, or kBFloat16 (autocast on CUDA, weights stay float32):
// model/precision.h's parse_precision restricted to those; throws std::invalid_argument otherwise.
Precision parse_training_precision(std::string_view text);

// The inputs of one iteration (official InputFetcher): images in [-1,1], int64 labels, latents.
struct Batch {
  at::Tensor x_real, y_org;          // source images and their domains
  at::Tensor x_ref, x_ref2, y_trg;   // two references of the target domain per sample
  at::Tensor z_trg, z_trg2;          // (N, latent_dim) ~ N(0, I)
};

// Loss terms as 0-dim tensors on the training device (read them only when logging, since each
// read waits for the device).
struct DLosses {
  at::Tensor real, fake, reg, total;
};
struct GLosses {
  at::Tensor adv, sty, ds, cyc, total;
};
struct StepLosses {
  DLosses d_latent, d_ref;
  GLosses g_latent, g_ref;
  // Warm-up iterations (options.recon_warmup) have only this term and none of the others.
  at::Tensor recon;
  // Official log names ("D/latent_real", ..., "G/ref_cyc") and values, or ("W/recon", value) in a
  // warm-up iteration; copies to the host.
  std::vector<std::pair<std::string, double>> named() const;
};

struct Networks {
  Generator generator{nullptr};
  MappingNetwork mapping_network{nullptr};
  StyleEncoder style_encoder{nullptr};
  Discriminator discriminator{nullptr};  // only in the trained set, not in the EMA set

  // (official name, module) for the networks present, in the official order.
  std::vector<std::pair<std::string, torch::nn::Module*>> named() const;
};

// Averages gradients across data-parallel replicas (distributed training, trainer/distributed.h).
// The solver calls begin() just before each of the four backward passes of an iteration with
// the networks whose optimizers step after it, and finish() after the backward: when finish()
// returns, those networks' gradients are the mean over all replicas.
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual void begin(const std::vector<torch::nn::Module*>& stepping) = 0;
  virtual void finish() = 0;
};

class Solver {
 public:
  // Builds G, F, E, D and their EMA copies on `device` the official way: the EMA copies are
  // taken before He init (so they start from LibTorch's default init, as the official deepcopy
  // does), then G, F, E and D get He init. Seeds the global RNG with options.seed first.
  // `fan` is required when w_hpf > 0 (it is put in eval mode and never trained) and ignored
  // otherwise. bf16 requires a CUDA device. Throws std::invalid_argument on bad options.
  Solver(const TrainOptions& options, torch::Device device, Precision precision = Precision::kFloat32,
         FAN fan = nullptr);

  // Runs one iteration on `batch` (moved to the device) and advances step() by one: a warm-up
  // iteration while step() < options.recon_warmup, else the official one.
  StepLosses train_step(const Batch& batch);

  const TrainOptions& options() const { return options_; }
  torch::Device device() const { return device_; }
  Precision precision() const { return precision_; }
  int64_t step() const { return step_; }
  double lambda_ds() const { return lambda_ds_; }  // current diversity weight (after decays)

  Networks& nets() { return nets_; }
  Networks& nets_ema() { return nets_ema_; }
  const Networks& nets() const { return nets_; }
  const Networks& nets_ema() const { return nets_ema_; }
  FAN& fan() { return fan_; }  // null when w_hpf == 0
  const FAN& fan() const { return fan_; }

  // One Adam per trained network, keyed by the official names; F's uses f_lr.
  torch::optim::Adam& optimizer(const std::string& net);
  const torch::optim::Adam& optimizer(const std::string& net) const;

  // For resuming: overwrite the counters restored from a resume file.
  void set_progress(int64_t step, double lambda_ds);

  // Data-parallel training: average gradients with `sync` (not owned; nullptr = one replica).
  void set_gradient_sync(GradientSync* sync) { sync_ = sync; }
  // The EMA networks are only read (sample grids, model files) on rank 0, so the other ranks
  // skip the average. Default on.
  void set_ema_enabled(bool enabled) { ema_enabled_ = enabled; }
  bool ema_enabled() const { return ema_enabled_; }

  // Masks for G from the FAN when w_hpf > 0 (no gradient), else empty.
  Masks masks_for(const at::Tensor& x);

  // Augmentation of D's inputs (options.diffaug; trainer/diff_augment.h). The probability in use
  // now: augment_p while ADA is off, else the adapted one (starting at 0).
  unsigned augment_policies() const { return augment_policies_; }
  double augment_p() const { return ada_.p; }
  // ADA's controller state with the signs counted so far (reading it waits for the device); for
  // the log and the resume file. set_ada_state restores one.
  AdaState ada_state() const;
  void set_ada_state(const AdaState& state);
  // Data-parallel training: this replica's rank, so that it augments its own rows of the global
  // batch with the same draws a single process would make; and a function that adds up the sign
  // counts (sum, count) of all replicas before each ADA adjustment, so that every rank's p agrees.
  void set_replica_rank(int64_t rank) { replica_rank_ = rank; }
  void set_ada_reducer(std::function<std::pair<double, double>(double, double)> reduce) {
    ada_reduce_ = std::move(reduce);
  }

 private:
  DLosses compute_d_loss(const at::Tensor& x_real, const at::Tensor& y_org, const at::Tensor& y_trg,
                         const at::Tensor* z_trg, const at::Tensor* x_ref, const Masks& masks);
  GLosses compute_g_loss(const at::Tensor& x_real, const at::Tensor& y_org, const at::Tensor& y_trg,
                         const at::Tensor* z_trgs, const at::Tensor* x_refs, const Masks& masks);
  void reset_grad();
  void backward(const at::Tensor& loss, const std::vector<torch::nn::Module*>& stepping);
  void moving_average();
  StepLosses warmup_step(const at::Tensor& x_real, const at::Tensor& y_org, const Masks& masks);
  // D's input: the augmented x when policies are on, else x itself (the official path).
  at::Tensor augment(const at::Tensor& x);
  void count_real_signs(const at::Tensor& logits);

  TrainOptions options_;
  torch::Device device_;
  Precision precision_;
  Networks nets_, nets_ema_;
  FAN fan_{nullptr};
  std::unique_ptr<torch::optim::Adam> optim_g_, optim_f_, optim_e_, optim_d_;
  GradientSync* sync_ = nullptr;
  bool ema_enabled_ = true;
  int64_t step_ = 0;
  double initial_lambda_ds_;
  double lambda_ds_;
  unsigned augment_policies_ = 0;
  bool ada_enabled_ = false;
  AdaState ada_;
  at::Tensor ada_sign_sum_;                // on the device: counted since the last adjustment
  std::optional<at::Generator> augment_gen_;  // this iteration's draws
  int64_t replica_rank_ = 0;
  std::function<std::pair<double, double>(double, double)> ada_reduce_;
};

// Official losses, exposed for tests.
// Binary cross-entropy of logits against a constant target (1 real, 0 fake), mean over the batch.
at::Tensor adv_loss(const at::Tensor& logits, double target);
// Zero-centred R1 penalty: 0.5 * mean over samples of sum |dD(x)/dx|^2. x must require grad
// and d_out must come from it; the graph is kept (create_graph) so the penalty is trainable.
at::Tensor r1_reg(const at::Tensor& d_out, const at::Tensor& x);

// Copies parameters and buffers of `from` into `to` (same architecture, matched by name).
void copy_module_state(const torch::nn::Module& from, torch::nn::Module& to);

}  // namespace starganv2
