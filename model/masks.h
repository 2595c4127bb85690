// The two face masks the FAN produces for the generator's high-pass skips.
#pragma once

#include <ATen/core/Tensor.h>

namespace starganv2 {

struct Masks {
  at::Tensor coarse;  // (N,1,H,W) in [0,1]: whole face; used at 32 px
  at::Tensor fine;    // (N,1,H,W) in [0,1]: without face line and mouth; used at 64 and 128 px
  bool defined() const { return coarse.defined() && fine.defined(); }
};

}  // namespace starganv2
