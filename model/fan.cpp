#include "fan.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <map>
#include <string>
#include <vector>

namespace starganv2 {

namespace F = torch::nn::functional;

namespace {

// The FAN's fixed geometry: a 256 px input gives 64 px heatmaps.
constexpr int64_t kInputSize = 256;
constexpr int64_t kFeatures = 256;
constexpr int64_t kHourglassDepth = 4;

torch::Tensor rectify(const torch::Tensor& x) { return F::relu(x); }

torch::Tensor halve(const torch::Tensor& x) { return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2)); }

torch::Tensor bilinear(const torch::Tensor& x, F::InterpolateFuncOptions options) {
  return F::interpolate(x, options.mode(torch::kBilinear));
}

// (1,3,h,w) float32: the row coordinate and the column coordinate, each scaled to [-1,1], and
// their radius scaled to [0,1] (official AddCoordsTh with with_r; note its "x" runs down rows).
torch::Tensor coordinate_channels(int64_t height, int64_t width) {
  torch::Tensor x_coords = torch::arange(height).unsqueeze(1).expand({height, width}).to(torch::kFloat);
  torch::Tensor y_coords = torch::arange(width).unsqueeze(0).expand({height, width}).to(torch::kFloat);
  x_coords = (x_coords / (height - 1)) * 2 - 1;
  y_coords = (y_coords / (width - 1)) * 2 - 1;
  torch::Tensor rr = torch::sqrt(torch::pow(x_coords, 2) + torch::pow(y_coords, 2));
  rr = rr / torch::max(rr);
  return torch::stack({x_coords, y_coords, rr}, 0).unsqueeze(0);
}

// Convolution over the input plus coordinate channels (official CoordConvTh with with_r). The
// official boundary channels need a heatmap, which the FAN never passes to its single hourglass,
// so they are never appended; only the weight shape still counts them where the official does.
class CoordConvThImpl : public torch::nn::Module {
 public:
  CoordConvThImpl(int64_t height, int64_t width, bool with_boundary, int64_t in_channels, bool first_one,
                  int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding)
      : coords_(coordinate_channels(height, width)) {
    in_channels += 3;  // two coordinates and the radius
    if (with_boundary && !first_one) in_channels += 2;
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, kernel)
                                                         .stride(stride)
                                                         .padding(padding)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor coords = coords_.to(x.device(), x.scalar_type()).expand({x.size(0), -1, -1, -1});
    return conv(torch::cat({x, coords}, /*dim=*/1));
  }

  // The coordinates are not state (official files do not hold them) so they are kept out of the
  // buffers, but they follow the module across devices and dtypes.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override {
    torch::nn::Module::to(device, dtype, non_blocking);
    coords_ = coords_.to(device, dtype);
  }
  void to(torch::Dtype dtype, bool non_blocking = false) override {
    torch::nn::Module::to(dtype, non_blocking);
    coords_ = coords_.to(dtype);
  }
  void to(torch::Device device, bool non_blocking = false) override {
    torch::nn::Module::to(device, non_blocking);
    coords_ = coords_.to(device);
  }

 private:
  torch::Tensor coords_;
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(CoordConvTh);

torch::nn::Conv2d conv3x3(int64_t in, int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(1).padding(1).bias(false));
}

// Pre-activation bottleneck whose three conv outputs (out/2, out/4, out/4 channels) are
// concatenated (official ConvBlock).
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int64_t in_planes, int64_t out_planes) {
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(in_planes));
    conv1 = register_module("conv1", conv3x3(in_planes, out_planes / 2));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(out_planes / 2));
    conv2 = register_module("conv2", conv3x3(out_planes / 2, out_planes / 4));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(out_planes / 4));
    conv3 = register_module("conv3", conv3x3(out_planes / 4, out_planes / 4));
    if (in_planes != out_planes) {
      downsample = register_module(
          "downsample",
          torch::nn::Sequential(torch::nn::BatchNorm2d(in_planes), torch::nn::ReLU(),
                                torch::nn::Conv2d(torch::nn::Conv2dOptions(in_planes, out_planes, 1).bias(false))));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out1 = conv1(rectify(bn1(x)));
    torch::Tensor out2 = conv2(rectify(bn2(out1)));
    torch::Tensor out3 = conv3(rectify(bn3(out2)));
    torch::Tensor residual = downsample.is_empty() ? x : downsample->forward(x);
    return torch::cat({out1, out2, out3}, /*dim=*/1) + residual;
  }

 private:
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(ConvBlock);

// Recursive hourglass (official HourGlass): at each level a full-resolution branch b1_L and a
// half-resolution branch b2_L -> (level L-1 | b2_plus_1) -> b3_L, upsampled and added.
class HourGlassImpl : public torch::nn::Module {
 public:
  explicit HourGlassImpl(int64_t depth) : depth_(depth) {
    const int64_t size = kInputSize / 4;
    coordconv = register_module("coordconv", CoordConvTh(size, size, /*with_boundary=*/true, kFeatures,
                                                         /*first_one=*/true, kFeatures, /*kernel=*/1,
                                                         /*stride=*/1, /*padding=*/0));
    add_level(depth_);
  }

  torch::Tensor forward(const torch::Tensor& x) { return forward_level(depth_, coordconv(x)); }

 private:
  // Registration order follows the official recursion, so named_parameters() lists the same order.
  void add_level(int64_t level) {
    add_block("b1_" + std::to_string(level));
    add_block("b2_" + std::to_string(level));
    if (level > 1) {
      add_level(level - 1);
    } else {
      add_block("b2_plus_" + std::to_string(level));
    }
    add_block("b3_" + std::to_string(level));
  }
  void add_block(const std::string& name) {
    blocks_.insert_or_assign(name, register_module(name, ConvBlock(kFeatures, kFeatures)));
  }

  torch::Tensor forward_level(int64_t level, const torch::Tensor& inp) {
    const std::string l = std::to_string(level);
    torch::Tensor up1 = blocks_.at("b1_" + l)(inp);
    torch::Tensor low1 = blocks_.at("b2_" + l)(halve(inp));
    torch::Tensor low2 = level > 1 ? forward_level(level - 1, low1) : blocks_.at("b2_plus_" + l)(low1);
    torch::Tensor low3 = blocks_.at("b3_" + l)(low2);
    torch::Tensor up2 = F::interpolate(
        low3, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest));
    return up1 + up2;
  }

  int64_t depth_;
  CoordConvTh coordconv{nullptr};
  std::map<std::string, ConvBlock> blocks_;
};
TORCH_MODULE(HourGlass);

// ---------------------------------------------------------------------------------------------
// Mask preprocessing (official core/wing.py preprocess and its helpers), on (N,98,H,W).

// Landmark index ranges [start, end) of the 98-point WFLW layout, as the official index_map.
struct Range {
  int64_t start, end;
};
constexpr Range kChin{0 + 8, 33 - 8};
constexpr Range kEyebrows{33, 51};
constexpr Range kEyebrowsEdges{33, 46};
constexpr Range kNose{51, 55};
constexpr Range kNostrils{55, 60};
constexpr Range kEyes{60, 76};
constexpr Range kLipEdges{76, 82};
constexpr Range kLipUpper{77, 82};
constexpr Range kLipLower{83, 88};
constexpr Range kLipInner{88, 96};

torch::Tensor channels(const torch::Tensor& x, Range r) { return x.slice(1, r.start, r.end); }

// Official shift(x, n): rows move up by n (down for negative n), wrapping around.
torch::Tensor shift_rows(const torch::Tensor& x, int64_t n) { return torch::roll(x, {-n}, {2}); }

// Official normalize(): per-map min-max scaling.
torch::Tensor normalize_maps(const torch::Tensor& x, double eps = 1e-6) {
  const auto sizes = x.sizes().vec();
  torch::Tensor flat = x.contiguous().view({sizes[0] * sizes[1], -1});
  torch::Tensor max_val = std::get<0>(flat.max(1, /*keepdim=*/true));
  torch::Tensor min_val = std::get<0>(flat.min(1, /*keepdim=*/true));
  return ((flat - min_val) / (max_val - min_val + eps)).view(sizes);
}

Masks preprocess(torch::Tensor x) {
  const int64_t sw = x.size(2) / 256;  // shifts are tuned for 256 px maps
  x = x.masked_fill(x < 0.1, 0);       // truncate: drop faint responses
  x = normalize_maps(x);

  // Per face part: shift, then sharpen with a power (official `operations`, in its order).
  struct Op {
    Range range;
    int64_t shift, power;
  };
  const Op ops[] = {{kChin, 0, 3},           {kEyebrows, -7 * sw, 2}, {kNostrils, 8 * sw, 4},
                    {kLipUpper, -8 * sw, 4}, {kLipLower, 8 * sw, 4},  {kLipInner, -2 * sw, 3}};
  for (const Op& op : ops) {
    torch::Tensor part = channels(x, op.range);
    part.copy_(torch::pow(shift_rows(part, op.shift), op.power));
  }

  // Jaw line outside the chin, the eyebrow edges and the lip corners take no part.
  // Slices rather than index_fill_ with an index tensor: no host-to-device copy per call, so
  // the translator can capture this in a CUDA graph.
  x.slice(1, 0, kChin.start).zero_();
  x.slice(1, kChin.end, 33).zero_();
  for (int64_t c : {kEyebrowsEdges.start, kEyebrowsEdges.end, kLipEdges.start, kLipEdges.end}) x.select(1, c).zero_();

  // Nose bridge below its top point moves up; the official power of 1 here is the identity.
  torch::Tensor nose = x.slice(1, kNose.start + 1, kNose.end);
  nose.copy_(shift_rows(nose, 4 * sw));

  // Eyes: a sharpened copy moved down 8 px plus a copy moved down 24 px (not scaled by sw in the
  // official code).
  torch::Tensor eyes = channels(x, kEyes);
  eyes.copy_(torch::pow(shift_rows(eyes, -8), 3) + shift_rows(eyes, -24));

  // The fine mask leaves out the face line, the mouth and the eyebrows.
  torch::Tensor x2 = x.clone();
  channels(x2, kChin).zero_();
  x2.slice(1, kLipEdges.start, kLipInner.end).zero_();
  channels(x2, kEyebrows).zero_();

  x = x.sum(1, /*keepdim=*/true);
  x2 = x2.sum(1, /*keepdim=*/true);
  x.masked_fill_(x != x, 0);
  // The official code masks x2 with x's NaNs *after* clearing them, i.e. with nothing; kept as is
  // so NaNs in x2 behave exactly like the official's.
  x2.masked_fill_(x != x, 0);
  return Masks{x.clamp_(0, 1), x2.clamp_(0, 1)};
}

}  // namespace

struct FANImpl::Parts {
  CoordConvTh conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  ConvBlock conv2{nullptr}, conv3{nullptr}, conv4{nullptr};
  HourGlass m0{nullptr};
  ConvBlock top_m_0{nullptr};
  torch::nn::Conv2d conv_last0{nullptr};
  torch::nn::BatchNorm2d bn_end0{nullptr};
  torch::nn::Conv2d l0{nullptr};
};

FANImpl::FANImpl() : parts_(std::make_shared<Parts>()) {
  Parts& p = *parts_;
  p.conv1 = register_module("conv1", CoordConvTh(kInputSize, kInputSize, /*with_boundary=*/false, /*in_channels=*/3,
                                                 /*first_one=*/false, /*out_channels=*/64, /*kernel=*/7,
                                                 /*stride=*/2, /*padding=*/3));
  p.bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
  p.conv2 = register_module("conv2", ConvBlock(64, 128));
  p.conv3 = register_module("conv3", ConvBlock(128, 128));
  p.conv4 = register_module("conv4", ConvBlock(128, kFeatures));
  p.m0 = register_module("m0", HourGlass(kHourglassDepth));
  p.top_m_0 = register_module("top_m_0", ConvBlock(kFeatures, kFeatures));
  p.conv_last0 = register_module("conv_last0", torch::nn::Conv2d(torch::nn::Conv2dOptions(kFeatures, kFeatures, 1)));
  p.bn_end0 = register_module("bn_end0", torch::nn::BatchNorm2d(kFeatures));
  p.l0 = register_module("l0", torch::nn::Conv2d(torch::nn::Conv2dOptions(kFeatures, kNumLandmarks + 1, 1)));
  // The official code only ever runs the FAN in eval mode (BatchNorm on running statistics).
  eval();
}

torch::Tensor FANImpl::forward(const torch::Tensor& x01) {
  TORCH_CHECK(x01.dim() == 4 && x01.size(1) == 3 && x01.size(2) == kInputSize && x01.size(3) == kInputSize,
              "FAN: input must be (N,3,256,256), got ", x01.sizes());
  Parts& p = *parts_;
  torch::Tensor x = rectify(p.bn1(p.conv1(x01)));
  x = halve(p.conv2(x));
  x = p.conv4(p.conv3(x));
  torch::Tensor ll = p.top_m_0(p.m0(x));
  ll = rectify(p.bn_end0(p.conv_last0(ll)));
  return p.l0(ll);
}

torch::Tensor FANImpl::get_heatmap_raw(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "FAN: x must be (N,3,H,W), got ", x.sizes());
  torch::NoGradGuard no_grad;
  torch::Tensor x256 = bilinear(x, F::InterpolateFuncOptions()
                                       .size(std::vector<int64_t>{kInputSize, kInputSize})
                                       .align_corners(false));
  return forward(x256 * 0.5 + 0.5).slice(1, 0, kNumLandmarks);
}

Masks FANImpl::get_heatmap(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  torch::Tensor heatmaps = get_heatmap_raw(x);
  // The input was resized to 256 px, so this brings the 64 px maps back to 256 px.
  const double scale = static_cast<double>(kInputSize / heatmaps.size(2));
  heatmaps = bilinear(heatmaps, F::InterpolateFuncOptions().scale_factor(std::vector<double>{scale, scale}).align_corners(true));
  return preprocess(heatmaps);
}

Masks fan_masks(FANImpl& fan, const torch::Tensor& x, torch::ScalarType out) {
  Masks masks = fan.get_heatmap(x.scalar_type() == torch::kFloat ? x : x.to(torch::kFloat));
  masks.coarse = masks.coarse.to(out);
  masks.fine = masks.fine.to(out);
  return masks;
}

torch::Tensor FANImpl::get_landmark(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  torch::Tensor heatmaps = get_heatmap_raw(x);
  const int64_t n = heatmaps.size(0), c = heatmaps.size(1), h = heatmaps.size(2), w = heatmaps.size(3);
  torch::Tensor flat = heatmaps.to(torch::kFloat).reshape({n, c, h * w});
  torch::Tensor idx = std::get<1>(flat.max(2));  // (N,C): the first maximum
  torch::Tensor px = idx.remainder(w);
  torch::Tensor py = idx.div(w, /*rounding_mode=*/"floor");

  // Refine by a quarter pixel towards the larger neighbour, away from the border.
  auto value_at = [&](const torch::Tensor& yy, const torch::Tensor& xx) {
    torch::Tensor i = yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1);
    return flat.gather(2, i.unsqueeze(2)).squeeze(2);
  };
  torch::Tensor dx = (value_at(py, px + 1) - value_at(py, px - 1)).sign();
  torch::Tensor dy = (value_at(py + 1, px) - value_at(py - 1, px)).sign();
  torch::Tensor interior = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1);
  torch::Tensor step = torch::where(interior.unsqueeze(2), torch::stack({dx, dy}, 2) * 0.25, 0.0f);

  // The official 1-based coordinates, refined, then moved to pixel centres (-0.5).
  torch::Tensor preds = torch::stack({px, py}, 2).to(torch::kFloat) + 1;
  preds = (preds + step) - 0.5;
  return preds * static_cast<double>(x.size(2) / h);
}

}  // namespace starganv2
