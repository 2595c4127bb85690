// Precompiled header for the LibTorch-heavy targets: parsing these headers dominates compile
// time on a 2-core machine, so every model/trainer/test target shares them.
#pragma once
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
