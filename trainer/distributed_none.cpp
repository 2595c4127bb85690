// A build without -Ddistributed (no gloo headers): one process only.
#include <stdexcept>

#include "distributed.h"

namespace starganv2 {

bool distributed_available() { return false; }

std::string distributed_backends() { return ""; }

std::unique_ptr<Communicator> make_communicator(const DistributedEnv& env, torch::Device, std::chrono::milliseconds) {
  throw std::runtime_error("WORLD_SIZE is " + std::to_string(env.world_size) +
                           " but this starganv2-train was built without distributed training: install libgloo-dev "
                           "(./setup.sh) and rebuild with meson -Ddistributed=enabled");
}

}  // namespace starganv2
