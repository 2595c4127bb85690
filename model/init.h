// Weight initialisation as the official training code does it (core/utils.py he_init).
#pragma once

namespace torch::nn {
class Module;
}

namespace starganv2 {

// For every Conv2d and Linear in module's tree (module included): weights ~ N(0, 2/fan_in)
// (Kaiming normal, fan_in, ReLU gain), biases 0. Other parameters (InstanceNorm affine) keep
// their defaults. The official trainer applies this to G, F, E and D, never to the FAN.
void he_init(torch::nn::Module& module);

}  // namespace starganv2
