#include "train_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <set>
#include <stdexcept>

#include "model/checkpoint.h"
#include "model/layout.h"
#include "model/locations.h"

#ifndef STARGANV2_VERSION
#define STARGANV2_VERSION "unknown"
#endif

namespace starganv2 {

namespace {

constexpr const char* kNetsPrefix = "nets.";
constexpr const char* kEmaPrefix = "nets_ema.";
constexpr const char* kOptimPrefix = "optims.";
constexpr const char* kFanPrefix = "fan";
constexpr const char* kRngCpu = "rng.cpu";

bool is_float(at::ScalarType t) { return t == at::kFloat || t == at::kHalf || t == at::kBFloat16; }

const at::Tensor& need(const SafetensorsFile& file, const std::string& source, const std::string& name) {
  const auto it = file.tensors.find(name);
  if (it == file.tensors.end()) throw CheckpointError(source + ": tensor \"" + name + "\" is missing");
  return it->second;
}

}  // namespace

std::string trainer_producer() { return "starganv2-train " STARGANV2_VERSION; }

void load_prefixed(const SafetensorsFile& file, const std::string& source, torch::nn::Module& module,
                   const std::string& prefix, bool strict) {
  torch::NoGradGuard no_grad;
  const std::string dotted = prefix + ".";
  std::set<std::string> used;
  std::vector<std::string> problems;
  for (auto& [name, dst] : named_state(module, prefix)) {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      problems.push_back(name + " missing");
      continue;
    }
    const at::Tensor& src = it->second;
    if (src.sizes() != dst.sizes())
      problems.push_back(name + " has shape " + shape_text(src.sizes()) + ", expected " + shape_text(dst.sizes()));
    else if (!is_float(src.scalar_type()))
      problems.push_back(name + " has dtype " + std::string(c10::toString(src.scalar_type())) + ", expected a float type");
    else
      dst.copy_(src);
    used.insert(name);
  }
  if (strict)
    for (auto it = file.tensors.lower_bound(dotted); it != file.tensors.end() && it->first.rfind(dotted, 0) == 0; ++it)
      if (!used.count(it->first)) problems.push_back(it->first + " is not a tensor of this network");
  if (!problems.empty()) {
    std::string text;
    for (size_t i = 0; i < problems.size() && i < 8; ++i) {
      if (i) text += "; ";
      text += problems[i];
    }
    if (problems.size() > 8) text += "; ... (" + std::to_string(problems.size() - 8) + " more)";
    throw CheckpointError(source + ": " + prefix + ": " + text);
  }
}

void write_model_file(const std::filesystem::path& path, const Solver& solver, const std::vector<std::string>& domains) {
  CheckpointMeta meta;
  meta.config = solver.options().model;
  meta.domains = domains;
  meta.producer = trainer_producer();
  meta.step = solver.step();
  const Networks& ema = solver.nets_ema();
  std::vector<std::pair<std::string, const torch::nn::Module*>> nets = {
      {"generator", ema.generator.get()},
      {"mapping_network", ema.mapping_network.get()},
      {"style_encoder", ema.style_encoder.get()},
  };
  if (solver.fan()) nets.emplace_back("fan", solver.fan().get());
  write_checkpoint(path, meta, nets);
}

void write_resume_file(const std::filesystem::path& path, const Solver& solver, const std::vector<std::string>& domains,
                       const std::string& sampler_state) {
  const std::string file = path.string();
  if (static_cast<int64_t>(domains.size()) != solver.options().model.num_domains)
    throw CheckpointError(file + ": cannot write: " + std::to_string(domains.size()) + " domain names for num_domains " +
                          std::to_string(solver.options().model.num_domains));
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, net] : solver.nets().named())
    for (auto& t : named_state(*net, kNetsPrefix + name)) tensors.push_back(std::move(t));
  for (const auto& [name, net] : solver.nets_ema().named())
    for (auto& t : named_state(*net, kEmaPrefix + name)) tensors.push_back(std::move(t));
  if (solver.fan())
    for (auto& t : named_state(*solver.fan(), kFanPrefix)) tensors.push_back(std::move(t));

  nlohmann::ordered_json optim_counts;
  for (const auto& [name, net] : solver.nets().named()) {
    const auto& states = solver.optimizer(name).state();
    int64_t count = 0;
    for (const auto& p : net->named_parameters(/*recurse=*/true)) {
      const auto it = states.find(p.value().unsafeGetTensorImpl());
      if (it == states.end()) continue;  // never had a gradient (e.g. unused shortcut convs)
      const auto& st = static_cast<const torch::optim::AdamParamState&>(*it->second);
      const std::string key = kOptimPrefix + name + "." + p.key();
      tensors.emplace_back(key + ".exp_avg", st.exp_avg());
      tensors.emplace_back(key + ".exp_avg_sq", st.exp_avg_sq());
      tensors.emplace_back(key + ".step", at::scalar_tensor(st.step(), at::kLong));
      ++count;
    }
    optim_counts[name] = count;
  }
  {
    at::Generator rng = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(rng.mutex());
    tensors.emplace_back(kRngCpu, rng.get_state());
  }

  std::map<std::string, std::string> meta;
  meta["format"] = kResumeFormat;
  meta["format_version"] = std::to_string(kResumeFormatVersion);
  meta["producer"] = trainer_producer();
  meta["options"] = solver.options().to_json();
  meta["config"] = solver.options().model.to_json();
  meta["domains"] = nlohmann::json(domains).dump();
  meta["step"] = std::to_string(solver.step());
  meta["lambda_ds"] = nlohmann::json(solver.lambda_ds()).dump();
  meta["optim_states"] = optim_counts.dump();
  meta["sampler"] = sampler_state;
  if (solver.augment_policies() != 0) {
    // Exact (integers and doubles written to read back the same), so a resumed ADA run continues
    // with the same probability and the signs counted since the last adjustment.
    const AdaState ada = solver.ada_state();
    meta["augment"] = nlohmann::json{{"p", ada.p}, {"sign_sum", ada.sign_sum}, {"sign_count", ada.sign_count},
                                     {"last_rt", ada.last_rt}}.dump();
  }
  write_safetensors(path, tensors, meta);
}

ResumeFile read_resume_file(const std::filesystem::path& path) {
  ResumeFile r;
  r.path = path;
  const std::string file = path.string();
  // Metadata and the layout of every network are checked on the header, before the file's
  // tensors are read or a solver of the size its options imply is built.
  r.file = read_safetensors(path, [&](const SafetensorsHeader& header) {
  const auto& md = header.metadata;
  auto text = [&](const char* key) -> const std::string& {
    const auto it = md.find(key);
    if (it == md.end()) throw CheckpointError(file + ": metadata \"" + key + "\" is missing (not a resume file?)");
    return it->second;
  };
  auto json = [&](const char* key) {
    // The deepest value is the options object with its "model" object inside.
    if (!json_nesting_within(text(key), 2)) throw CheckpointError(file + ": metadata \"" + key + "\" nests too deep");
    nlohmann::json j = nlohmann::json::parse(text(key), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw CheckpointError(file + ": metadata \"" + key + "\" is not valid JSON");
    return j;
  };
  if (text("format") != kResumeFormat)
    throw CheckpointError(file + ": metadata \"format\" is \"" + text("format") + "\", not \"" + kResumeFormat +
                          "\" (a model file cannot be resumed; pass the run's resume file)");
  const auto version = json("format_version");
  if (!version.is_number_integer() || version.get<int64_t>() < 1 || version.get<int64_t>() > kResumeFormatVersion)
    throw CheckpointError(file + ": resume format_version " + version.dump() + " is not supported (this build reads 1 to " +
                          std::to_string(kResumeFormatVersion) + ")");
  try {
    // Nesting is refused before parsing: a deep text would have the parser build one level each.
    if (!json_nesting_within(text("options"), 2))
      throw std::invalid_argument("nests deeper than {\"model\": {...}}");
    r.options = TrainOptions::from_json(text("options"));
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(file + ": metadata \"options\": " + e.what());
  }
  const auto domains = json("domains");
  if (!domains.is_array()) throw CheckpointError(file + ": metadata \"domains\" is not a list of names");
  for (const auto& d : domains) {
    if (!d.is_string()) throw CheckpointError(file + ": metadata \"domains\" holds a non-string");
    r.domains.push_back(d.get<std::string>());
  }
  if (static_cast<int64_t>(r.domains.size()) != r.options.model.num_domains)
    throw CheckpointError(file + ": " + std::to_string(r.domains.size()) + " domain names but num_domains " +
                          std::to_string(r.options.model.num_domains));
  const auto step = json("step");
  if (!step.is_number_integer() || step.get<int64_t>() < 0)
    throw CheckpointError(file + ": metadata \"step\" is not an integer >= 0");
  r.step = step.get<int64_t>();
  const auto lambda = json("lambda_ds");
  if (!lambda.is_number()) throw CheckpointError(file + ": metadata \"lambda_ds\" is not a number");
  r.lambda_ds = lambda.get<double>();
  r.sampler_state = text("sampler");
  if (md.count("augment")) {
    const auto a = json("augment");
    auto number = [&](const char* key) {
      if (!a.is_object() || !a.contains(key) || !a[key].is_number())
        throw CheckpointError(file + ": metadata \"augment\" lacks the number \"" + key + "\"");
      return a[key].get<double>();
    };
    AdaState ada;
    ada.p = number("p");
    ada.sign_sum = number("sign_sum");
    ada.sign_count = number("sign_count");
    ada.last_rt = number("last_rt");
    if (!(ada.p >= 0 && ada.p <= 1) || !(ada.sign_count >= 0))
      throw CheckpointError(file + ": metadata \"augment\" is out of range: " + a.dump());
    r.augment = ada;
  }
  for (const char* net : kLayoutNetworks) {
    check_layout(header, network_layout(r.options.model, net, kNetsPrefix + std::string(net)), file, net);
    // The EMA set has no discriminator.
    if (std::string(net) != "discriminator")
      check_layout(header, network_layout(r.options.model, net, kEmaPrefix + std::string(net)), file,
                   std::string(net) + " (EMA)");
  }
  });
  return r;
}

FAN fan_from_resume(const ResumeFile& resume) {
  if (resume.options.model.w_hpf <= 0) return nullptr;
  FAN fan;
  load_prefixed(resume.file, resume.path.string(), *fan, kFanPrefix);
  fan->eval();
  return fan;
}

void restore_solver(const ResumeFile& resume, Solver& solver) {
  const std::string file = resume.path.string();
  // total_iters may grow when a run is continued; everything else must be the run's own.
  TrainOptions expected = resume.options;
  expected.total_iters = solver.options().total_iters;
  if (!(solver.options() == expected))
    throw CheckpointError(file + ": the solver was built with other options than the resume file's");
  for (const auto& [name, net] : solver.nets().named()) load_prefixed(resume.file, file, *net, kNetsPrefix + name);
  for (const auto& [name, net] : solver.nets_ema().named()) load_prefixed(resume.file, file, *net, kEmaPrefix + name);

  nlohmann::json counts = nlohmann::json::parse(resume.file.metadata.count("optim_states")
                                                    ? resume.file.metadata.at("optim_states")
                                                    : std::string("null"),
                                                nullptr, false);
  if (!counts.is_object()) throw CheckpointError(file + ": metadata \"optim_states\" is missing or not a JSON object");
  for (const auto& [name, net] : solver.nets().named()) {
    torch::optim::Adam& opt = solver.optimizer(name);
    auto& states = opt.state();
    states.clear();
    int64_t count = 0;
    for (const auto& p : net->named_parameters(/*recurse=*/true)) {
      const std::string key = kOptimPrefix + name + "." + p.key();
      if (!resume.file.tensors.count(key + ".step")) continue;
      const at::Tensor& exp_avg = need(resume.file, file, key + ".exp_avg");
      const at::Tensor& exp_avg_sq = need(resume.file, file, key + ".exp_avg_sq");
      const at::Tensor& st = need(resume.file, file, key + ".step");
      if (exp_avg.sizes() != p.value().sizes() || exp_avg_sq.sizes() != p.value().sizes())
        throw CheckpointError(file + ": " + key + " has the wrong shape");
      if (exp_avg.scalar_type() != at::kFloat || exp_avg_sq.scalar_type() != at::kFloat ||
          st.scalar_type() != at::kLong || st.numel() != 1)
        throw CheckpointError(file + ": " + key + " has the wrong dtype (F32 moments, I64 step expected)");
      auto state = std::make_unique<torch::optim::AdamParamState>();
      state->step(st.item<int64_t>());
      state->exp_avg(exp_avg.to(p.value().device()).clone());
      state->exp_avg_sq(exp_avg_sq.to(p.value().device()).clone());
      states[p.value().unsafeGetTensorImpl()] = std::move(state);
      ++count;
    }
    if (!counts.contains(name) || !counts[name].is_number_integer() || counts[name].get<int64_t>() != count)
      throw CheckpointError(file + ": " + std::to_string(count) + " Adam states found for " + name +
                            ", metadata says " + (counts.contains(name) ? counts[name].dump() : std::string("none")));
  }
  {
    const at::Tensor& rng_state = need(resume.file, file, kRngCpu);
    at::Generator rng = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(rng.mutex());
    try {
      rng.set_state(rng_state);
    } catch (const c10::Error&) {
      throw CheckpointError(file + ": " + kRngCpu + " is not a CPU generator state");
    }
  }
  solver.set_progress(resume.step, resume.lambda_ds);
  if (resume.augment) solver.set_ada_state(*resume.augment);
}

FAN load_fan(const std::filesystem::path& path) {
  const SafetensorsFile file = read_safetensors(path);
  const auto it = file.tensors.lower_bound("fan.");
  if (it == file.tensors.end() || it->first.rfind("fan.", 0) != 0)
    throw CheckpointError(path.string() + ": no \"fan.*\" tensors (make the FAN file from the authors' wing.ckpt with `" +
                          converter_command() + " --wing wing.ckpt --out wing.safetensors`)");
  FAN fan;
  load_prefixed(file, path.string(), *fan, kFanPrefix, /*strict=*/false);
  fan->eval();
  return fan;
}

}  // namespace starganv2
