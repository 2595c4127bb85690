#include "solver.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <map>
#include <mutex>
#include <stdexcept>

#include "model/checkpoint.h"
#include "model/init.h"
#include "random.h"

namespace starganv2 {

namespace {

// Enables (or disables) bf16 autocast on CUDA for a scope and restores the previous state.
// The official code has no autocast; with it on, weights and optimizer stay float32 and only
// the forward/backward kernels run in bf16, which needs no loss scaling.
class AutocastScope {
 public:
  explicit AutocastScope(bool enable) : previous_(at::autocast::is_autocast_enabled(at::kCUDA)) {
    if (enable == previous_) return;
    changed_ = true;
    at::autocast::set_autocast_enabled(at::kCUDA, enable);
    if (enable) at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  }
  ~AutocastScope() {
    if (!changed_) return;
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
    // Casted weight copies are cached per enabled region; drop them so they cannot go stale
    // after the optimizer changes the weights.
    if (!previous_) at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool previous_;
  bool changed_ = false;
};

std::vector<at::Tensor> params_of(torch::nn::Module& m) { return m.parameters(/*recurse=*/true); }

}  // namespace

Precision parse_training_precision(std::string_view text) {
  const Precision p = parse_precision(text);
  if (p != Precision::kFloat32 && p != Precision::kBFloat16)
    throw std::invalid_argument("precision \"" + std::string(text) + "\" cannot train (use fp32 or bf16)");
  return p;
}

std::vector<std::pair<std::string, double>> StepLosses::named() const {
  if (recon.defined()) return {{"W/recon", recon.detach().to(at::kCPU, at::kDouble).item<double>()}};
  const std::vector<std::pair<std::string, const at::Tensor*>> terms = {
      {"D/latent_real", &d_latent.real}, {"D/latent_fake", &d_latent.fake}, {"D/latent_reg", &d_latent.reg},
      {"D/latent_total", &d_latent.total},
      {"D/ref_real", &d_ref.real},       {"D/ref_fake", &d_ref.fake},       {"D/ref_reg", &d_ref.reg},
      {"D/ref_total", &d_ref.total},
      {"G/latent_adv", &g_latent.adv},   {"G/latent_sty", &g_latent.sty},   {"G/latent_ds", &g_latent.ds},
      {"G/latent_cyc", &g_latent.cyc},   {"G/latent_total", &g_latent.total},
      {"G/ref_adv", &g_ref.adv},         {"G/ref_sty", &g_ref.sty},         {"G/ref_ds", &g_ref.ds},
      {"G/ref_cyc", &g_ref.cyc},         {"G/ref_total", &g_ref.total},
  };
  std::vector<at::Tensor> values;
  for (const auto& t : terms) values.push_back(t.second->detach().to(at::kFloat).reshape({}));
  // One copy to the host instead of one wait per term.
  const at::Tensor host = at::stack(values).to(at::kCPU, at::kDouble);
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < terms.size(); ++i) out.emplace_back(terms[i].first, host[static_cast<int64_t>(i)].item<double>());
  return out;
}

std::vector<std::pair<std::string, torch::nn::Module*>> Networks::named() const {
  std::vector<std::pair<std::string, torch::nn::Module*>> out;
  if (generator) out.emplace_back("generator", generator.ptr().get());
  if (mapping_network) out.emplace_back("mapping_network", mapping_network.ptr().get());
  if (style_encoder) out.emplace_back("style_encoder", style_encoder.ptr().get());
  if (discriminator) out.emplace_back("discriminator", discriminator.ptr().get());
  return out;
}

void copy_module_state(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  const auto src = named_state(from);
  auto dst = named_state(to);
  if (src.size() != dst.size()) throw std::invalid_argument("copy_module_state: different architectures");
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i].first != dst[i].first || src[i].second.sizes() != dst[i].second.sizes())
      throw std::invalid_argument("copy_module_state: " + src[i].first + " does not match " + dst[i].first);
    dst[i].second.copy_(src[i].second);
  }
}

at::Tensor adv_loss(const at::Tensor& logits, double target) {
  const at::Tensor targets = at::full_like(logits, target);
  return torch::nn::functional::binary_cross_entropy_with_logits(logits, targets);
}

at::Tensor r1_reg(const at::Tensor& d_out, const at::Tensor& x) {
  const int64_t batch = x.size(0);
  const at::Tensor grad = torch::autograd::grad({d_out.sum()}, {x}, /*grad_outputs=*/{}, /*retain_graph=*/true,
                                                /*create_graph=*/true)[0];
  TORCH_CHECK(grad.sizes() == x.sizes(), "r1_reg: gradient shape ", grad.sizes(), " differs from ", x.sizes());
  return 0.5 * grad.to(at::kFloat).pow(2).reshape({batch, -1}).sum(1).mean(0);
}

Solver::Solver(const TrainOptions& options, torch::Device device, Precision precision, FAN fan)
    : options_(options), device_(device), precision_(precision), initial_lambda_ds_(options.lambda_ds),
      lambda_ds_(options.lambda_ds) {
  options_.validate();
  if (precision_ != Precision::kFloat32 && precision_ != Precision::kBFloat16)
    throw std::invalid_argument("precision " + to_string(precision_) + " cannot train (use fp32 or bf16)");
  if (precision_ == Precision::kBFloat16 && !device_.is_cuda())
    throw std::invalid_argument("precision bf16 (autocast) needs a CUDA device; use fp32 on " + device_.str());
  const ModelConfig& c = options_.model;
  if (c.w_hpf > 0 && !fan)
    throw std::invalid_argument("w_hpf > 0 needs the FAN face-mask network (pass its weights), or set w_hpf 0");

  torch::manual_seed(options_.seed);
  nets_.generator = Generator(c);
  nets_.mapping_network = MappingNetwork(c);
  nets_.style_encoder = StyleEncoder(c);
  nets_.discriminator = Discriminator(c);
  // Official build_model deep-copies the EMA networks before the solver applies He init to
  // the trained ones, so the averages start from the default init. Building the copies draws
  // from the global RNG, which a deepcopy does not; restoring its state keeps He init on the
  // official random stream.
  at::Generator rng = at::detail::getDefaultCPUGenerator();
  at::Tensor rng_state;
  {
    std::lock_guard<std::mutex> lock(rng.mutex());
    rng_state = rng.get_state();
  }
  nets_ema_.generator = Generator(c);
  nets_ema_.mapping_network = MappingNetwork(c);
  nets_ema_.style_encoder = StyleEncoder(c);
  copy_module_state(*nets_.generator, *nets_ema_.generator);
  copy_module_state(*nets_.mapping_network, *nets_ema_.mapping_network);
  copy_module_state(*nets_.style_encoder, *nets_ema_.style_encoder);
  {
    std::lock_guard<std::mutex> lock(rng.mutex());
    rng.set_state(rng_state);
  }
  for (auto& [name, net] : nets_.named()) he_init(*net);

  for (auto& [name, net] : nets_.named()) {
    net->to(device_);
    net->train();
  }
  for (auto& [name, net] : nets_ema_.named()) {
    net->to(device_);
    net->train();  // as the official: never switched; G, F, E have no mode-dependent layers
  }
  if (c.w_hpf > 0) {
    fan_ = std::move(fan);
    fan_->to(device_);
    fan_->eval();  // BatchNorm with running statistics; official builds it with .eval()
    for (auto& p : fan_->parameters()) p.set_requires_grad(false);
  }

  auto adam = [&](torch::nn::Module& net, double lr) {
    return std::make_unique<torch::optim::Adam>(
        params_of(net), torch::optim::AdamOptions(lr)
                            .betas(std::make_tuple(options_.beta1, options_.beta2))
                            .weight_decay(options_.weight_decay));  // eps 1e-8 as torch.optim.Adam
  };
  optim_g_ = adam(*nets_.generator, options_.lr);
  optim_f_ = adam(*nets_.mapping_network, options_.f_lr);
  optim_e_ = adam(*nets_.style_encoder, options_.lr);
  optim_d_ = adam(*nets_.discriminator, options_.lr);

  augment_policies_ = parse_diff_augment(options_.diffaug);
  ada_enabled_ = augment_policies_ != 0 && options_.ada_target > 0;
  ada_.p = ada_enabled_ ? 0.0 : options_.augment_p;  // ADA starts without augmentation
}

AdaState Solver::ada_state() const {
  AdaState s = ada_;
  if (ada_sign_sum_.defined()) s.sign_sum += ada_sign_sum_.item<double>();
  return s;
}

void Solver::set_ada_state(const AdaState& state) {
  if (state.p < 0 || state.p > 1 || !(state.sign_count >= 0))
    throw std::invalid_argument("augmentation state out of range: p " + std::to_string(state.p));
  ada_ = state;
  if (ada_sign_sum_.defined()) ada_sign_sum_.zero_();
}

at::Tensor Solver::augment(const at::Tensor& x) {
  if (augment_policies_ == 0) return x;
  const int64_t n = x.size(0);
  // Every replica holds batch_size / world samples; its draws are its rows of the global batch.
  const int64_t total = std::max(options_.batch_size, (replica_rank_ + 1) * n);
  return diff_augment(x, augment_policies_, ada_.p, *augment_gen_, total, replica_rank_ * n);
}

void Solver::count_real_signs(const at::Tensor& logits) {
  if (!ada_enabled_) return;
  // Summed on the device and read only at an adjustment, so counting costs no wait per step.
  const at::Tensor signs = logits.detach().sign().sum().to(at::kFloat);
  if (!ada_sign_sum_.defined()) ada_sign_sum_ = at::zeros({}, signs.options());
  ada_sign_sum_.add_(signs);
  ada_.sign_count += static_cast<double>(logits.numel());
}

torch::optim::Adam& Solver::optimizer(const std::string& net) {
  return const_cast<torch::optim::Adam&>(static_cast<const Solver&>(*this).optimizer(net));
}

const torch::optim::Adam& Solver::optimizer(const std::string& net) const {
  if (net == "generator") return *optim_g_;
  if (net == "mapping_network") return *optim_f_;
  if (net == "style_encoder") return *optim_e_;
  if (net == "discriminator") return *optim_d_;
  throw std::invalid_argument("no optimizer for \"" + net + "\"");
}

void Solver::set_progress(int64_t step, double lambda_ds) {
  step_ = step;
  lambda_ds_ = lambda_ds;
}

Masks Solver::masks_for(const at::Tensor& x) {
  if (options_.model.w_hpf <= 0) return {};
  AutocastScope fp32(false);  // mask thresholds are tuned on float32 heatmaps
  torch::NoGradGuard no_grad;
  return fan_->get_heatmap(x.detach().to(at::kFloat));
}

void Solver::reset_grad() {
  // The official _reset_grad zeroes every optimizer before each backward, so gradients that
  // reach networks that do not step (D in the G steps, E in the reference G step) are dropped.
  optim_g_->zero_grad();
  optim_f_->zero_grad();
  optim_e_->zero_grad();
  optim_d_->zero_grad();
}

void Solver::backward(const at::Tensor& loss, const std::vector<torch::nn::Module*>& stepping) {
  if (!sync_) {
    loss.backward();
    return;
  }
  // The hooks of `sync_` start all-reduces of gradient buckets while the backward still runs.
  sync_->begin(stepping);
  loss.backward();
  sync_->finish();
}

DLosses Solver::compute_d_loss(const at::Tensor& x_real_in, const at::Tensor& y_org, const at::Tensor& y_trg,
                               const at::Tensor* z_trg, const at::Tensor* x_ref, const Masks& masks) {
  AutocastScope autocast(precision_ == Precision::kBFloat16);
  // R1 differentiates D(x_real) with respect to the images themselves.
  const at::Tensor x_real = x_real_in.detach().requires_grad_(true);
  DLosses l;
  // With augmentation, D sees the augmented image and R1 still differentiates with respect to the
  // real image itself, through the (differentiable) augmentation.
  at::Tensor out = nets_.discriminator(augment(x_real), y_org);
  count_real_signs(out);
  l.real = adv_loss(out, 1.0);
  l.reg = r1_reg(out, x_real);

  at::Tensor x_fake;
  {
    torch::NoGradGuard no_grad;  // fakes are inputs of D here, not something to train
    const at::Tensor s_trg = z_trg ? nets_.mapping_network(*z_trg, y_trg) : nets_.style_encoder(*x_ref, y_trg);
    x_fake = nets_.generator(x_real.detach(), s_trg, masks);
  }
  out = nets_.discriminator(augment(x_fake), y_trg);
  l.fake = adv_loss(out, 0.0);
  l.total = l.real + l.fake + options_.lambda_reg * l.reg;
  return l;
}

GLosses Solver::compute_g_loss(const at::Tensor& x_real, const at::Tensor& y_org, const at::Tensor& y_trg,
                               const at::Tensor* z_trgs, const at::Tensor* x_refs, const Masks& masks) {
  AutocastScope autocast(precision_ == Precision::kBFloat16);
  GLosses l;
  const at::Tensor s_trg =
      z_trgs ? nets_.mapping_network(z_trgs[0], y_trg) : nets_.style_encoder(x_refs[0], y_trg);
  const at::Tensor x_fake = nets_.generator(x_real, s_trg, masks);
  l.adv = adv_loss(nets_.discriminator(augment(x_fake), y_trg), 1.0);

  const at::Tensor s_pred = nets_.style_encoder(x_fake, y_trg);
  l.sty = at::mean(at::abs(s_pred - s_trg));

  at::Tensor x_fake2;
  {
    // The second fake is detached in the official loss, so building its graph is wasted work;
    // the forward values are the same without it.
    torch::NoGradGuard no_grad;
    const at::Tensor s_trg2 =
        z_trgs ? nets_.mapping_network(z_trgs[1], y_trg) : nets_.style_encoder(x_refs[1], y_trg);
    x_fake2 = nets_.generator(x_real, s_trg2, masks);
  }
  l.ds = at::mean(at::abs(x_fake - x_fake2));

  // The cycle translates the fake back, so its masks come from the fake's face.
  const Masks masks_cyc = masks_for(x_fake);
  const at::Tensor s_org = nets_.style_encoder(x_real, y_org);
  const at::Tensor x_rec = nets_.generator(x_fake, s_org, masks_cyc);
  l.cyc = at::mean(at::abs(x_rec - x_real));

  l.total = l.adv + options_.lambda_sty * l.sty - lambda_ds_ * l.ds + options_.lambda_cyc * l.cyc;
  return l;
}

void Solver::moving_average() {
  torch::NoGradGuard no_grad;
  const double beta = options_.ema_beta;
  const auto trained = nets_.named();
  const auto ema = nets_ema_.named();
  for (size_t n = 0; n < ema.size(); ++n) {
    const auto params = trained[n].second->parameters();
    auto params_ema = ema[n].second->parameters();
    for (size_t i = 0; i < params.size(); ++i) params_ema[i].copy_(at::lerp(params[i], params_ema[i], beta));
  }
}

StepLosses Solver::warmup_step(const at::Tensor& x_real, const at::Tensor& y_org, const Masks& masks) {
  // G starts from He init, and its first adversarial steps teach it to show the 16x16 bottleneck
  // through the decoder's nearest-neighbour upsampling (each bottleneck cell a visible square);
  // on a large dataset D soon punishes that, on a few dozen images it stays for thousands of
  // iterations. Reconstruction from the image's own style code is the cycle loss's target
  // without a translation in between: L1 on every pixel teaches the decoder the face's layout in
  // a few hundred cheap iterations (one G and one E pass instead of the iteration's dozen), and
  // the official iterations then start from there. Measured on the demo runs: faces are found in
  // far more translations, but the fine grid of the 2x upsampling seams is not hidden by it (the
  // L1 optimum is blurry, and on a blurry picture the seams show; `starganv2-eval faces`' seams).
  // F and D are left as initialised; lambda_ds and ADA start with the official iterations.
  AutocastScope autocast(precision_ == Precision::kBFloat16);
  StepLosses out;
  const at::Tensor s_org = nets_.style_encoder(x_real, y_org);
  out.recon = at::mean(at::abs(nets_.generator(x_real, s_org, masks) - x_real));
  reset_grad();
  backward(out.recon, {nets_.generator.ptr().get(), nets_.style_encoder.ptr().get()});
  optim_g_->step();
  optim_e_->step();
  if (ema_enabled_) moving_average();
  ++step_;
  out.recon = out.recon.detach();
  return out;
}

StepLosses Solver::train_step(const Batch& batch) {
  auto on_device = [&](const at::Tensor& t) { return t.to(device_, /*non_blocking=*/true); };
  const at::Tensor x_real = on_device(batch.x_real), y_org = on_device(batch.y_org);
  const at::Tensor x_ref = on_device(batch.x_ref), x_ref2 = on_device(batch.x_ref2), y_trg = on_device(batch.y_trg);
  const at::Tensor z_trg = on_device(batch.z_trg), z_trg2 = on_device(batch.z_trg2);

  const Masks masks = masks_for(x_real);
  if (step_ < options_.recon_warmup) return warmup_step(x_real, y_org, masks);
  StepLosses out;
  // This iteration's augmentation draws, from (seed, step) alone: a resumed run draws the same.
  if (augment_policies_ != 0)
    augment_gen_ = at::make_generator<at::CPUGeneratorImpl>(
        derive_seed(options_.seed, RandomStream::kDiffAugment, static_cast<uint64_t>(step_)));

  out.d_latent = compute_d_loss(x_real, y_org, y_trg, &z_trg, nullptr, masks);
  reset_grad();
  backward(out.d_latent.total, {nets_.discriminator.ptr().get()});
  optim_d_->step();

  out.d_ref = compute_d_loss(x_real, y_org, y_trg, nullptr, &x_ref, masks);
  reset_grad();
  backward(out.d_ref.total, {nets_.discriminator.ptr().get()});
  optim_d_->step();

  const at::Tensor z_trgs[2] = {z_trg, z_trg2};
  out.g_latent = compute_g_loss(x_real, y_org, y_trg, z_trgs, nullptr, masks);
  reset_grad();
  backward(out.g_latent.total,
           {nets_.generator.ptr().get(), nets_.mapping_network.ptr().get(), nets_.style_encoder.ptr().get()});
  optim_g_->step();
  optim_f_->step();
  optim_e_->step();

  const at::Tensor x_refs[2] = {x_ref, x_ref2};
  out.g_ref = compute_g_loss(x_real, y_org, y_trg, nullptr, x_refs, masks);
  reset_grad();
  backward(out.g_ref.total, {nets_.generator.ptr().get()});
  optim_g_->step();

  if (ema_enabled_) moving_average();

  if (lambda_ds_ > 0) lambda_ds_ -= initial_lambda_ds_ / static_cast<double>(options_.ds_iter);
  ++step_;

  if (ada_enabled_ && step_ % options_.ada_interval == 0) {
    ada_ = ada_state();
    if (ada_sign_sum_.defined()) ada_sign_sum_.zero_();
    if (ada_reduce_) std::tie(ada_.sign_sum, ada_.sign_count) = ada_reduce_(ada_.sign_sum, ada_.sign_count);
    ada_adjust(ada_, options_.ada_target, options_.batch_size, options_.ada_interval, options_.ada_kimg);
  }

  // Keep only the values: the graphs would otherwise live until the next iteration.
  for (DLosses* d : {&out.d_latent, &out.d_ref})
    for (at::Tensor* t : {&d->real, &d->fake, &d->reg, &d->total}) *t = t->detach();
  for (GLosses* g : {&out.g_latent, &out.g_ref})
    for (at::Tensor* t : {&g->adv, &g->sty, &g->ds, &g->cyc, &g->total}) *t = t->detach();
  return out;
}

}  // namespace starganv2
