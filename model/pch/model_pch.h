// Precompiled header for the LibTorch-heavy targets: parsing these headers dominates compile
// time on a 2-core machine. Only targets with several LibTorch sources use it (model/, the
// trainer's two libraries, the Processor, test_model): meson writes one PCH per target, about
// 660 MB each, and a single-source target gains nothing from it (the header is parsed once
// either way), so giving it to every target filled the disk of a 20 GB build. An include guard
// rather than #pragma once: the header is also compiled on its own to make the PCH, where GCC
// warns about #pragma once in the main file.
#ifndef STARGANV2_MODEL_PCH_H
#define STARGANV2_MODEL_PCH_H
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/functional.h>
#include <ATen/ATen.h>

#endif  // STARGANV2_MODEL_PCH_H
