#!/usr/bin/env python3
"""Writes tests/model/metrics_fixture.safetensors: what the official StarGAN v2 metrics code
(clovaai/stargan-v2 metrics/fid.py, metrics/lpips.py, core/data_loader.py) computes with random
weights, for test_metrics.cpp to compare the C++ FID and LPIPS against.

usage: make_metrics_fixture.py OFFICIAL_CHECKOUT [OUT]

OFFICIAL_CHECKOUT is a checkout of clovaai/stargan-v2 (its metrics/ and core/ are imported from
there; nothing of it is copied). Needs torch, torchvision (the version matching torch), numpy,
scipy, pillow and munch, e.g. in a throwaway venv outside this repository:

    python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install torch torchvision numpy scipy pillow munch

The networks' weights are not stored (Inception-v3 alone is ~95 MB): both sides generate them
from a seed with seeded_state() below, which the C++ test repeats op for op (a CPU
torch.Generator gives the same randn/rand values in Python and LibTorch). Inputs are generated
the same way; only outputs (and a few small images) are stored.
"""

import collections
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torchvision
from PIL import Image

INCEPTION_SEED = 23
INCEPTION_INPUT_SEED = 24
LPIPS_SEED = 25
LPIPS_INPUT_SEED = 26
FRECHET_SEED = 27
RESIZE_SEED = 28


def seeded_state(shapes, seed):
    """Random weights for a state dict, in sorted name order from one generator. The rules keep
    a deep random network's activations in range: He-scaled convolutions, BatchNorm near
    identity, non-negative LPIPS weights."""
    g = torch.Generator().manual_seed(seed)
    out = collections.OrderedDict()
    for name in sorted(shapes):
        shape = list(shapes[name])
        if name.endswith("running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif name.endswith("running_mean") or name.endswith("bias"):
            t = torch.randn(shape, generator=g) * 0.1
        elif name.startswith("lpips_weights."):
            t = torch.rand(shape, generator=g)
        elif len(shape) == 1:
            t = torch.randn(shape, generator=g) * 0.1 + 1.0
        else:
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            t = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        out[name] = t
    return out


def frechet_features(seed, n, d, shift):
    """(n, d) float64 features with correlated, unequally scaled columns."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn([n, d], generator=g, dtype=torch.float64)
    mixed = f.clone()
    mixed[:, 1:] = f[:, 1:] + 0.5 * f[:, :-1]
    scale = 1.0 + torch.arange(d, dtype=torch.float64) / d
    return mixed * scale + shift


FRECHET_CASES = [  # (n, d, shift of the second set); the first set has shift 0
    (200, 32, 0.0),
    (200, 32, 0.25),
    (300, 64, 1.0),
]


def write_safetensors(path, tensors, metadata):
    names = {torch.float32: "F32", torch.float64: "F64", torch.uint8: "U8", torch.int64: "I64"}
    header = collections.OrderedDict()
    header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, t in tensors.items():
        t = t.contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    official = os.path.abspath(sys.argv[1])
    out_path = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else
                               os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics_fixture.safetensors"))
    sys.path.insert(0, official)
    torch.set_num_threads(1)

    # The official modules ask torchvision for pretrained networks (a download) and move the
    # LPIPS constants to CUDA; both are replaced by seeded networks on the CPU.
    inception_keep = None
    inception_v3, alexnet = torchvision.models.inception_v3, torchvision.models.alexnet

    def seeded_inception(*args, **kwargs):
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        state = net.state_dict()
        shapes = {k: v.shape for k, v in state.items() if k.split(".")[0] not in ("AuxLogits", "fc")
                  and not k.endswith("num_batches_tracked")}
        nonlocal inception_keep
        inception_keep = seeded_state(shapes, INCEPTION_SEED)
        net.load_state_dict(inception_keep, strict=False)
        return net

    lpips_state = {}

    def seeded_alexnet(*args, **kwargs):
        net = alexnet(weights=None)
        if lpips_state:
            prefix = "alexnet.layers."
            net.features.load_state_dict({k[len(prefix):]: v for k, v in lpips_state.items() if k.startswith(prefix)})
        return net

    torch.Tensor.cuda = lambda self, *a, **k: self
    import metrics.fid as fid
    import metrics.lpips as lpips
    fid.models.inception_v3 = seeded_inception
    lpips.models.alexnet = seeded_alexnet

    tensors = collections.OrderedDict()
    meta = collections.OrderedDict()

    # ---- FID: Inception features, Fréchet distance ----
    with torch.no_grad():
        net = fid.InceptionV3().eval()
        x = torch.randn([2, 3, 299, 299], generator=torch.Generator().manual_seed(INCEPTION_INPUT_SEED))
        tensors["inception.features"] = net(x).float()
    meta["inception.weights_sum"] = repr(float(sum(t.double().sum() for t in inception_keep.values())))
    meta["inception.tensors"] = str(len(inception_keep))

    for i, (n, d, shift) in enumerate(FRECHET_CASES):
        a = frechet_features(FRECHET_SEED + 2 * i, n, d, 0.0).numpy()
        b = frechet_features(FRECHET_SEED + 2 * i + 1, n, d, shift).numpy()
        value = fid.frechet_distance(np.mean(a, axis=0), np.cov(a, rowvar=False),
                                     np.mean(b, axis=0), np.cov(b, rowvar=False))
        tensors["frechet.%d" % i] = torch.tensor([float(value)], dtype=torch.float64)

    # ---- LPIPS ----
    with tempfile.TemporaryDirectory() as tmp:
        # The official LPIPS reads metrics/lpips_weights.ckpt relative to the working directory.
        probe = lpips.LPIPS.__new__(lpips.LPIPS)
        torch.nn.Module.__init__(probe)
        probe.alexnet = lpips.AlexNet()
        probe.lpips_weights = torch.nn.ModuleList([lpips.Conv1x1(c, 1) for c in probe.alexnet.channels])
        shapes = {k: v.shape for k, v in probe.state_dict().items()}
        state = seeded_state(shapes, LPIPS_SEED)
        lpips_state.update(state)
        os.makedirs(os.path.join(tmp, "metrics"))
        torch.save({k: v for k, v in state.items() if k.startswith("lpips_weights.")},
                   os.path.join(tmp, "metrics", "lpips_weights.ckpt"))
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            model = lpips.LPIPS().eval()
        finally:
            os.chdir(cwd)
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        g = torch.Generator().manual_seed(LPIPS_INPUT_SEED)
        group = [torch.rand([2, 3, 256, 256], generator=g) * 2 - 1 for _ in range(3)]
        with torch.no_grad():
            per_image = []
            for i in range(len(group) - 1):
                for j in range(i + 1, len(group)):
                    per_image.append([float(model(group[i][k:k + 1], group[j][k:k + 1])) for k in range(2)])
            tensors["lpips.per_image"] = torch.tensor(per_image, dtype=torch.float32)
            # calculate_lpips_given_images builds its own LPIPS (from the same files).
            os.chdir(tmp)
            try:
                value = lpips.calculate_lpips_given_images(group)
            finally:
                os.chdir(cwd)
        tensors["lpips.group"] = torch.tensor([value], dtype=torch.float64)
        meta["lpips.weights_sum"] = repr(float(sum(t.double().sum() for t in state.values())))

    # ---- The official eval loader's resizing (Pillow bilinear through torchvision) ----
    from torchvision import transforms
    g = torch.Generator().manual_seed(RESIZE_SEED)
    for i, (h, w, steps) in enumerate([(41, 53, [32, 37]), (120, 97, [20]), (64, 64, [64])]):
        src = torch.randint(0, 256, [h, w, 3], generator=g, dtype=torch.uint8)
        img = Image.fromarray(src.numpy(), "RGB")
        for s in steps:
            img = transforms.Resize([s, s])(img)
        tensors["resize.%d.src" % i] = src
        tensors["resize.%d.out" % i] = torch.from_numpy(np.array(img))
        meta["resize.%d.steps" % i] = json.dumps(steps)
    # The official get_eval_loader's tensor for FID (imagenet_normalize) at img_size 48, of a PNG
    # (lossless) of the second image: its sums and every 97th value.
    from core.data_loader import get_eval_loader
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(tensors["resize.1.src"].numpy(), "RGB").save(os.path.join(tmp, "a.png"))
        loader = get_eval_loader(tmp, img_size=48, batch_size=1, imagenet_normalize=True, shuffle=False,
                                 num_workers=0)
        t = next(iter(loader))[0]
    tensors["loader.fid.sums"] = torch.tensor([t.double().sum(), (t.double() ** 2).sum()], dtype=torch.float64)
    tensors["loader.fid.every97"] = t.flatten()[::97].clone()

    meta["made_by"] = "tests/model/make_metrics_fixture.py with torch %s, torchvision %s" % (
        torch.__version__, torchvision.__version__)
    write_safetensors(out_path, tensors, meta)
    f = tensors["inception.features"]
    print("inception features: mean %.4f, std %.4f, min %.4f, max %.4f" % (f.mean(), f.std(), f.min(), f.max()))
    print("wrote %s (%d bytes)" % (out_path, os.path.getsize(out_path)))
    for k, v in tensors.items():
        if v.numel() <= 8:
            print(" ", k, v.tolist())
    return 0


if __name__ == "__main__":
    sys.exit(main())
