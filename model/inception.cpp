#include "inception.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include <string>
#include <utility>
#include <vector>

#include "metric_weights.h"

namespace starganv2 {

namespace F = torch::nn::functional;

namespace {

// torchvision's BasicConv2d: convolution without bias, BatchNorm with eps 0.001, ReLU.
class BasicConv2dImpl : public torch::nn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, std::pair<int64_t, int64_t> kernel, int64_t stride = 1,
                  std::pair<int64_t, int64_t> padding = {0, 0}) {
    conv = register_module("conv",
                           torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, {kernel.first, kernel.second})
                                                 .stride(stride)
                                                 .padding(torch::ExpandingArray<2>({padding.first, padding.second}))
                                                 .bias(false)));
    bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(0.001)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(bn(conv(x))); }

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

BasicConv2d square(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0) {
  return BasicConv2d(in, out, std::pair{k, k}, stride, std::pair{pad, pad});
}
// The factorised 1x7 / 7x1 (and 1x3 / 3x1) convolutions of Mixed_6 and Mixed_7.
BasicConv2d row(int64_t in, int64_t out, int64_t k) {
  return BasicConv2d(in, out, std::pair{1, k}, 1, std::pair{0, k / 2});
}
BasicConv2d column(int64_t in, int64_t out, int64_t k) {
  return BasicConv2d(in, out, std::pair{k, 1}, 1, std::pair{k / 2, 0});
}

// torchvision pools the pool branches of InceptionA/C/E with avg_pool2d(3, 1, 1), padding
// counted (count_include_pad=True); the reduction blocks B and D with max_pool2d(3, 2).
torch::Tensor pool_branch_avg(const torch::Tensor& x) {
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1));
}
torch::Tensor max_pool(const torch::Tensor& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2)); }

// Mixed_5b/5c/5d.
class InceptionAImpl : public torch::nn::Module {
 public:
  InceptionAImpl(int64_t in, int64_t pool_features) {
    branch1x1 = register_module("branch1x1", square(in, 64, 1));
    branch5x5_1 = register_module("branch5x5_1", square(in, 48, 1));
    branch5x5_2 = register_module("branch5x5_2", square(48, 64, 5, 1, 2));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", square(in, 64, 1));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", square(64, 96, 3, 1, 1));
    branch3x3dbl_3 = register_module("branch3x3dbl_3", square(96, 96, 3, 1, 1));
    branch_pool = register_module("branch_pool", square(in, pool_features, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({branch1x1(x), branch5x5_2(branch5x5_1(x)), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))),
                       branch_pool(pool_branch_avg(x))},
                      1);
  }
  BasicConv2d branch1x1{nullptr}, branch5x5_1{nullptr}, branch5x5_2{nullptr}, branch3x3dbl_1{nullptr},
      branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionA);

// Mixed_6a: 35 -> 17 px.
class InceptionBImpl : public torch::nn::Module {
 public:
  explicit InceptionBImpl(int64_t in) {
    branch3x3 = register_module("branch3x3", square(in, 384, 3, 2));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", square(in, 64, 1));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", square(64, 96, 3, 1, 1));
    branch3x3dbl_3 = register_module("branch3x3dbl_3", square(96, 96, 3, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({branch3x3(x), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))), max_pool(x)}, 1);
  }
  BasicConv2d branch3x3{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

// Mixed_6b..6e.
class InceptionCImpl : public torch::nn::Module {
 public:
  InceptionCImpl(int64_t in, int64_t c7) {
    branch1x1 = register_module("branch1x1", square(in, 192, 1));
    branch7x7_1 = register_module("branch7x7_1", square(in, c7, 1));
    branch7x7_2 = register_module("branch7x7_2", row(c7, c7, 7));
    branch7x7_3 = register_module("branch7x7_3", column(c7, 192, 7));
    branch7x7dbl_1 = register_module("branch7x7dbl_1", square(in, c7, 1));
    branch7x7dbl_2 = register_module("branch7x7dbl_2", column(c7, c7, 7));
    branch7x7dbl_3 = register_module("branch7x7dbl_3", row(c7, c7, 7));
    branch7x7dbl_4 = register_module("branch7x7dbl_4", column(c7, c7, 7));
    branch7x7dbl_5 = register_module("branch7x7dbl_5", row(c7, 192, 7));
    branch_pool = register_module("branch_pool", square(in, 192, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor b7 = branch7x7_3(branch7x7_2(branch7x7_1(x)));
    torch::Tensor bd = branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))));
    return torch::cat({branch1x1(x), b7, bd, branch_pool(pool_branch_avg(x))}, 1);
  }
  BasicConv2d branch1x1{nullptr}, branch7x7_1{nullptr}, branch7x7_2{nullptr}, branch7x7_3{nullptr},
      branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr}, branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr},
      branch7x7dbl_5{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionC);

// Mixed_7a: 17 -> 8 px.
class InceptionDImpl : public torch::nn::Module {
 public:
  explicit InceptionDImpl(int64_t in) {
    branch3x3_1 = register_module("branch3x3_1", square(in, 192, 1));
    branch3x3_2 = register_module("branch3x3_2", square(192, 320, 3, 2));
    branch7x7x3_1 = register_module("branch7x7x3_1", square(in, 192, 1));
    branch7x7x3_2 = register_module("branch7x7x3_2", row(192, 192, 7));
    branch7x7x3_3 = register_module("branch7x7x3_3", column(192, 192, 7));
    branch7x7x3_4 = register_module("branch7x7x3_4", square(192, 192, 3, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat(
        {branch3x3_2(branch3x3_1(x)), branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x)))), max_pool(x)}, 1);
  }
  BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr}, branch7x7x3_1{nullptr}, branch7x7x3_2{nullptr},
      branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

// Mixed_7b/7c.
class InceptionEImpl : public torch::nn::Module {
 public:
  explicit InceptionEImpl(int64_t in) {
    branch1x1 = register_module("branch1x1", square(in, 320, 1));
    branch3x3_1 = register_module("branch3x3_1", square(in, 384, 1));
    branch3x3_2a = register_module("branch3x3_2a", row(384, 384, 3));
    branch3x3_2b = register_module("branch3x3_2b", column(384, 384, 3));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", square(in, 448, 1));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", square(448, 384, 3, 1, 1));
    branch3x3dbl_3a = register_module("branch3x3dbl_3a", row(384, 384, 3));
    branch3x3dbl_3b = register_module("branch3x3dbl_3b", column(384, 384, 3));
    branch_pool = register_module("branch_pool", square(in, 192, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor b3 = branch3x3_1(x);
    b3 = torch::cat({branch3x3_2a(b3), branch3x3_2b(b3)}, 1);
    torch::Tensor bd = branch3x3dbl_2(branch3x3dbl_1(x));
    bd = torch::cat({branch3x3dbl_3a(bd), branch3x3dbl_3b(bd)}, 1);
    return torch::cat({branch1x1(x), b3, bd, branch_pool(pool_branch_avg(x))}, 1);
  }
  BasicConv2d branch1x1{nullptr}, branch3x3_1{nullptr}, branch3x3_2a{nullptr}, branch3x3_2b{nullptr},
      branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr},
      branch_pool{nullptr};
};
TORCH_MODULE(InceptionE);

}  // namespace

struct InceptionV3Impl::Parts {
  BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr}, Conv2d_3b_1x1{nullptr},
      Conv2d_4a_3x3{nullptr};
  InceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
  InceptionB Mixed_6a{nullptr};
  InceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
  InceptionD Mixed_7a{nullptr};
  InceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
};

InceptionV3Impl::InceptionV3Impl() : parts_(std::make_shared<Parts>()) {
  Parts& p = *parts_;
  p.Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", square(3, 32, 3, 2));
  p.Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", square(32, 32, 3));
  p.Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", square(32, 64, 3, 1, 1));
  p.Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", square(64, 80, 1));
  p.Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", square(80, 192, 3));
  p.Mixed_5b = register_module("Mixed_5b", InceptionA(192, 32));
  p.Mixed_5c = register_module("Mixed_5c", InceptionA(256, 64));
  p.Mixed_5d = register_module("Mixed_5d", InceptionA(288, 64));
  p.Mixed_6a = register_module("Mixed_6a", InceptionB(288));
  p.Mixed_6b = register_module("Mixed_6b", InceptionC(768, 128));
  p.Mixed_6c = register_module("Mixed_6c", InceptionC(768, 160));
  p.Mixed_6d = register_module("Mixed_6d", InceptionC(768, 160));
  p.Mixed_6e = register_module("Mixed_6e", InceptionC(768, 192));
  p.Mixed_7a = register_module("Mixed_7a", InceptionD(768));
  p.Mixed_7b = register_module("Mixed_7b", InceptionE(1280));
  p.Mixed_7c = register_module("Mixed_7c", InceptionE(2048));
}

torch::Tensor InceptionV3Impl::forward(const torch::Tensor& x) {
  Parts& p = *parts_;
  // block1 .. block4 of the official fid.py.
  torch::Tensor h = max_pool(p.Conv2d_2b_3x3(p.Conv2d_2a_3x3(p.Conv2d_1a_3x3(x))));
  h = max_pool(p.Conv2d_4a_3x3(p.Conv2d_3b_1x1(h)));
  h = p.Mixed_6e(p.Mixed_6d(p.Mixed_6c(p.Mixed_6b(p.Mixed_6a(p.Mixed_5d(p.Mixed_5c(p.Mixed_5b(h))))))));
  h = p.Mixed_7c(p.Mixed_7b(p.Mixed_7a(h)));
  h = F::adaptive_avg_pool2d(h, F::AdaptiveAvgPool2dFuncOptions(1));
  return h.reshape({h.size(0), -1});
}

InceptionV3 load_inception(const std::filesystem::path& path) {
  InceptionV3 net;
  load_metric_weights(
      path, *net, kInceptionContents,
      "starganv2-convert-official --inception inception_v3_google-0cc3c7bd.pth --out inception.safetensors");
  net->eval();
  return net;
}

}  // namespace starganv2
