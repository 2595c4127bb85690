// The smallest training options the networks accept (32 px, narrow, batch 2, w_hpf 0), shared
// by the trainer's unit tests so that they train at CPU speed.
#pragma once

#include "trainer/options.h"

namespace starganv2::test {

inline TrainOptions tiny_options() {
  TrainOptions o;
  o.model.img_size = 32;
  o.model.style_dim = 8;
  o.model.latent_dim = 4;
  o.model.hidden_dim = 16;
  o.model.max_conv_dim = 16;
  o.model.num_domains = 2;
  o.model.w_hpf = 0;
  o.model.base_dim = 8;
  o.batch_size = 2;
  return o;
}

}  // namespace starganv2::test
