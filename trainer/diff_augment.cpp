#include "diff_augment.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace starganv2 {

namespace {

struct PolicyName {
  DiffAugmentPolicy flag;
  const char* name;
};
constexpr PolicyName kPolicies[] = {
    {kAugmentColor, "color"}, {kAugmentTranslation, "translation"}, {kAugmentCutout, "cutout"}};

// The fractions of DiffAugment's reference settings: shifts of up to 1/8 of the side, cutout
// squares of half the side.
constexpr double kTranslationRatio = 0.125;
constexpr double kCutoutRatio = 0.5;

int64_t round_half_up(double v) { return static_cast<int64_t>(std::floor(v + 0.5)); }

}  // namespace

unsigned parse_diff_augment(std::string_view text) {
  if (text.empty() || text == "none") return 0;
  unsigned flags = 0;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string_view word = text.substr(start, end - start);
    unsigned flag = 0;
    for (const auto& p : kPolicies)
      if (word == p.name) flag = p.flag;
    if (flag == 0)
      throw std::invalid_argument("unknown augmentation policy \"" + std::string(word) +
                                  "\" (known: color, translation, cutout)");
    if (flags & flag) throw std::invalid_argument("augmentation policy \"" + std::string(word) + "\" given twice");
    flags |= flag;
    start = end + 1;
  }
  return flags;
}

std::string diff_augment_name(unsigned policies) {
  std::string out;
  for (const auto& p : kPolicies) {
    if (!(policies & p.flag)) continue;
    if (!out.empty()) out += ',';
    out += p.name;
  }
  return out;
}

at::Tensor diff_augment(const at::Tensor& x, unsigned policies, double p, at::Generator& gen, int64_t total,
                        int64_t offset) {
  TORCH_CHECK(x.dim() == 4, "diff_augment: expected (N, C, H, W), got ", x.sizes());
  const int64_t n = x.size(0), height = x.size(2), width = x.size(3);
  TORCH_CHECK(offset >= 0 && offset + n <= total, "diff_augment: samples [", offset, ", ", offset + n,
              ") are not inside a batch of ", total);
  TORCH_CHECK(p >= 0 && p <= 1, "diff_augment: p must be in [0, 1], got ", p);
  // Draws are float32 on the CPU for the whole global batch, then this replica's rows: the same
  // numbers whatever the device or the number of replicas.
  const auto cpu_float = at::TensorOptions().dtype(at::kFloat);
  auto draw = [&](int64_t columns) { return at::rand({total, columns}, gen, cpu_float).narrow(0, offset, n); };
  // Which samples get the policy: u < p, so p = 0 selects none and p = 1 all.
  auto chosen = [&] { return draw(1).lt(p).view({n}); };
  auto per_sample = [&](const at::Tensor& column) { return column.reshape({n, 1, 1, 1}).to(x.device(), x.scalar_type()); };

  at::Tensor out = x;
  if (policies & kAugmentColor) {
    const at::Tensor apply = chosen();
    const at::Tensor r = draw(3);
    at::Tensor y = out + (per_sample(r.select(1, 0)) - 0.5);  // brightness
    at::Tensor mean = y.mean({1}, /*keepdim=*/true);
    y = (y - mean) * (per_sample(r.select(1, 1)) * 2) + mean;  // saturation
    mean = y.mean({1, 2, 3}, /*keepdim=*/true);
    y = (y - mean) * (per_sample(r.select(1, 2)) + 0.5) + mean;  // contrast
    // Kept inside the range of real images: values no real image has would tell D which inputs
    // are augmented, and what D learns from them would leak into G.
    y = y.clamp(-1, 1);
    out = at::where(apply.view({n, 1, 1, 1}).to(x.device()), y, out);
  }
  if (policies & kAugmentTranslation) {
    const at::Tensor apply = chosen();
    const at::Tensor r = draw(2);
    const int64_t max_dy = round_half_up(static_cast<double>(height) * kTranslationRatio);
    const int64_t max_dx = round_half_up(static_cast<double>(width) * kTranslationRatio);
    // Zero padding is mid-grey in [-1, 1]; output(y, x) = input(y - dy, x - dx).
    const at::Tensor padded = at::constant_pad_nd(out, {max_dx, max_dx, max_dy, max_dy}, 0);
    const auto picked = apply.accessor<bool, 1>();
    const auto shift = r.accessor<float, 2>();
    std::vector<at::Tensor> rows;
    rows.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      int64_t dy = 0, dx = 0;
      if (picked[i]) {
        dy = std::min(static_cast<int64_t>(shift[i][0] * static_cast<float>(2 * max_dy + 1)), 2 * max_dy) - max_dy;
        dx = std::min(static_cast<int64_t>(shift[i][1] * static_cast<float>(2 * max_dx + 1)), 2 * max_dx) - max_dx;
      }
      rows.push_back(padded[i].narrow(1, max_dy - dy, height).narrow(2, max_dx - dx, width));
    }
    out = at::stack(rows);
  }
  if (policies & kAugmentCutout) {
    const at::Tensor apply = chosen();
    const at::Tensor r = draw(2);
    const int64_t cut_h = round_half_up(static_cast<double>(height) * kCutoutRatio);
    const int64_t cut_w = round_half_up(static_cast<double>(width) * kCutoutRatio);
    at::Tensor keep = at::ones({n, 1, height, width}, cpu_float);
    const auto picked = apply.accessor<bool, 1>();
    const auto centre = r.accessor<float, 2>();
    for (int64_t i = 0; i < n; ++i) {
      if (!picked[i]) continue;
      // A centre anywhere in the image; the square is clipped at the borders.
      const int64_t cy = std::min(static_cast<int64_t>(centre[i][0] * static_cast<float>(height)), height - 1);
      const int64_t cx = std::min(static_cast<int64_t>(centre[i][1] * static_cast<float>(width)), width - 1);
      const int64_t y0 = std::max<int64_t>(cy - cut_h / 2, 0), y1 = std::min(cy - cut_h / 2 + cut_h, height);
      const int64_t x0 = std::max<int64_t>(cx - cut_w / 2, 0), x1 = std::min(cx - cut_w / 2 + cut_w, width);
      keep[i].narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0).zero_();
    }
    out = out * keep.to(x.device(), x.scalar_type());
  }
  return out;
}

void ada_adjust(AdaState& state, double target, int64_t batch_size, int64_t interval, double kimg) {
  if (state.sign_count <= 0) return;
  state.last_rt = state.sign_sum / state.sign_count;
  const double step = static_cast<double>(batch_size * interval) / (kimg * 1000.0);
  const double direction = state.last_rt > target ? 1.0 : state.last_rt < target ? -1.0 : 0.0;
  state.p = std::clamp(state.p + direction * step, 0.0, 1.0);
  state.sign_sum = 0;
  state.sign_count = 0;
}

}  // namespace starganv2
