#!/usr/bin/env python3
"""Convert the StarGAN v2 authors' released weights into a starganv2 model file.

Reads `100000_nets_ema.ckpt` (a torch.save'd dict of state dicts: generator, mapping_network,
style_encoder, and possibly discriminator and fan) and optionally `wing.ckpt` (the FAN landmark
network, {"state_dict": ...}), infers the model configuration from the tensor shapes, and
writes one safetensors file with the network-prefixed official parameter names and the
metadata our loader requires (format_version, config, domains, producer, step). With --wing
alone it writes a FAN file (fan.* tensors only), e.g. for `starganv2-train --fan`.

It also converts the networks of the official evaluation (FID and LPIPS, metrics/fid.py and
metrics/lpips.py of clovaai/stargan-v2) from the files users download: with --inception,
torchvision's inception_v3_google-0cc3c7bd.pth into an Inception file (torchvision's names, the
tensors of the FID feature path only); with --alexnet and --lpips, torchvision's
alexnet-owt-7be5be79.pth and the official metrics/lpips_weights.ckpt (or LPIPS v0.1's
weights/v0.1/alex.pth) into an LPIPS file (alexnet.layers.N.*, lpips_weights.K.main.1.weight,
the official LPIPS module's names).

The inputs are pickles, so they are read with the safe unpickler of torch.load, which refuses
anything but tensors and plain containers. Needs only torch (no numpy, no safetensors).

The command: build/model/starganv2-convert-official in a build tree (this file with the build's
python in its first line), starganv2-convert-official once installed, or
`.venv/bin/python model/convert_official.py` from the source tree.

    starganv2-convert-official expr/checkpoints/celeba_hq/100000_nets_ema.ckpt \\
        --wing expr/checkpoints/wing.ckpt --domains female male --out celeba_hq.safetensors
    starganv2-convert-official expr/checkpoints/afhq/100000_nets_ema.ckpt \\
        --domains cat dog wild --out afhq.safetensors
    starganv2-convert-official --wing expr/checkpoints/wing.ckpt --out wing.safetensors
    starganv2-convert-official --inception ~/.cache/torch/hub/checkpoints/inception_v3_google-0cc3c7bd.pth \\
        --out inception.safetensors
    starganv2-convert-official --alexnet ~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth \\
        --lpips metrics/lpips_weights.ckpt --out lpips.safetensors

Exit codes: 0 written; 1 bad input (options, files) or a failure, with one message on stderr and
no output file left behind.
"""

import argparse
import collections.abc
import ctypes
import json
import math
import os
import re
import struct
import sys
import warnings
import zipfile

FORMAT_VERSION = 1
PRODUCER = "starganv2-convert-official 0.1.0"
NETWORKS = ("generator", "mapping_network", "style_encoder", "discriminator", "fan")
REQUIRED = ("generator", "mapping_network", "style_encoder")
# The high-pass kernel of the generator's skip path; the stored buffer is this divided by w_hpf.
HPF_KERNEL = [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]]
MAX_LISTED = 12


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Expected layouts: parameter names and shapes of each network for a configuration, following
# the module structure of the official networks (core/model.py, core/wing.py), so that the
# converted file is checked completely here rather than failing later at load time.
# ---------------------------------------------------------------------------------------------

def _conv(out, p, cout, cin, k, bias=True):
    out[p + ".weight"] = (cout, cin, k, k)
    if bias:
        out[p + ".bias"] = (cout,)


def _linear(out, p, fout, fin):
    out[p + ".weight"] = (fout, fin)
    out[p + ".bias"] = (fout,)


def _affine(out, p, n):
    out[p + ".weight"] = (n,)
    out[p + ".bias"] = (n,)


def _batchnorm(out, p, n):
    _affine(out, p, n)
    out[p + ".running_mean"] = (n,)
    out[p + ".running_var"] = (n,)


def _resblk(out, p, din, dout, normalize):
    _conv(out, p + ".conv1", din, din, 3)
    _conv(out, p + ".conv2", dout, din, 3)
    if normalize:
        _affine(out, p + ".norm1", din)
        _affine(out, p + ".norm2", din)
    if din != dout:
        _conv(out, p + ".conv1x1", dout, din, 1, bias=False)


def _adain_resblk(out, p, din, dout, style_dim):
    _conv(out, p + ".conv1", dout, din, 3)
    _conv(out, p + ".conv2", dout, dout, 3)
    _linear(out, p + ".norm1.fc", 2 * din, style_dim)
    _linear(out, p + ".norm2.fc", 2 * dout, style_dim)
    if din != dout:
        _conv(out, p + ".conv1x1", dout, din, 1, bias=False)


def _log2(n):
    return int(round(math.log2(n)))


def generator_layout(c):
    out = {}
    dim_in = 2 ** 14 // c["img_size"]
    _conv(out, "from_rgb", dim_in, 3, 3)
    repeat = _log2(c["img_size"]) - 4 + (1 if c["w_hpf"] > 0 else 0)
    encode, decode = [], []
    for _ in range(repeat):
        dim_out = min(dim_in * 2, c["max_conv_dim"])
        encode.append((dim_in, dim_out, True))
        decode.insert(0, (dim_out, dim_in))
        dim_in = dim_out
    for _ in range(2):
        encode.append((dim_out, dim_out, True))
        decode.insert(0, (dim_out, dim_out))
    for i, (a, b, norm) in enumerate(encode):
        _resblk(out, "encode.%d" % i, a, b, norm)
    for i, (a, b) in enumerate(decode):
        _adain_resblk(out, "decode.%d" % i, a, b, c["style_dim"])
    first = 2 ** 14 // c["img_size"]
    _affine(out, "to_rgb.0", first)
    _conv(out, "to_rgb.2", 3, first, 1)
    if c["w_hpf"] > 0:
        out["hpf.filter"] = (3, 3)
    return out


def mapping_network_layout(c):
    out = {}
    h = c["hidden_dim"]
    _linear(out, "shared.0", h, c["latent_dim"])
    for i in (2, 4, 6):
        _linear(out, "shared.%d" % i, h, h)
    for k in range(c["num_domains"]):
        for i in (0, 2, 4):
            _linear(out, "unshared.%d.%d" % (k, i), h, h)
        _linear(out, "unshared.%d.6" % k, c["style_dim"], h)
    return out


def _downsampling_trunk(out, p, c):
    """Shared trunk of the style encoder and the discriminator; returns (next index, channels)."""
    dim_in = 2 ** 14 // c["img_size"]
    _conv(out, p + ".0", dim_in, 3, 3)
    repeat = _log2(c["img_size"]) - 2
    dim_out = dim_in
    for i in range(repeat):
        dim_out = min(dim_in * 2, c["max_conv_dim"])
        _resblk(out, "%s.%d" % (p, i + 1), dim_in, dim_out, normalize=False)
        dim_in = dim_out
    # index repeat+1 is a LeakyReLU, then the 4x4 convolution
    _conv(out, "%s.%d" % (p, repeat + 2), dim_out, dim_out, 4)
    return repeat + 4, dim_out  # repeat+3 is the second LeakyReLU


def style_encoder_layout(c):
    out = {}
    _, dim = _downsampling_trunk(out, "shared", c)
    for k in range(c["num_domains"]):
        _linear(out, "unshared.%d" % k, c["style_dim"], dim)
    return out


def discriminator_layout(c):
    out = {}
    last, dim = _downsampling_trunk(out, "main", c)
    _conv(out, "main.%d" % last, c["num_domains"], dim, 1)
    return out


def _convblock(out, p, cin, cout):
    _batchnorm(out, p + ".bn1", cin)
    _conv(out, p + ".conv1", cout // 2, cin, 3, bias=False)
    _batchnorm(out, p + ".bn2", cout // 2)
    _conv(out, p + ".conv2", cout // 4, cout // 2, 3, bias=False)
    _batchnorm(out, p + ".bn3", cout // 4)
    _conv(out, p + ".conv3", cout // 4, cout // 4, 3, bias=False)
    if cin != cout:
        _batchnorm(out, p + ".downsample.0", cin)
        _conv(out, p + ".downsample.2", cout, cin, 1, bias=False)


def fan_layout(_c=None):
    out = {}
    # CoordConv input: RGB + x, y and radius channels.
    _conv(out, "conv1.conv", 64, 3 + 3, 7)
    _batchnorm(out, "bn1", 64)
    _convblock(out, "conv2", 64, 128)
    _convblock(out, "conv3", 128, 128)
    _convblock(out, "conv4", 128, 256)
    # The first hourglass has coordinates and radius but no boundary channels yet.
    _conv(out, "m0.coordconv.conv", 256, 256 + 3, 1)

    def hourglass(level):
        _convblock(out, "m0.b1_%d" % level, 256, 256)
        _convblock(out, "m0.b2_%d" % level, 256, 256)
        if level > 1:
            hourglass(level - 1)
        else:
            _convblock(out, "m0.b2_plus_%d" % level, 256, 256)
        _convblock(out, "m0.b3_%d" % level, 256, 256)

    hourglass(4)
    _convblock(out, "top_m_0", 256, 256)
    _conv(out, "conv_last0", 256, 256, 1)
    _batchnorm(out, "bn_end0", 256)
    _conv(out, "l0", 98 + 1, 256, 1)
    return out


# ---- The evaluation networks: torchvision's inception_v3 (the FID feature path) and alexnet ----

def _basic_conv(out, p, cin, cout, kh, kw=None):
    """torchvision's BasicConv2d: a bias-free convolution and a BatchNorm."""
    out[p + ".conv.weight"] = (cout, cin, kh, kw or kh)
    _batchnorm(out, p + ".bn", cout)


def inception_layout(_c=None):
    """The tensors of torchvision's Inception3 that the official FID uses (no AuxLogits, no fc)."""
    out = {}
    _basic_conv(out, "Conv2d_1a_3x3", 3, 32, 3)
    _basic_conv(out, "Conv2d_2a_3x3", 32, 32, 3)
    _basic_conv(out, "Conv2d_2b_3x3", 32, 64, 3)
    _basic_conv(out, "Conv2d_3b_1x1", 64, 80, 1)
    _basic_conv(out, "Conv2d_4a_3x3", 80, 192, 3)
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        _basic_conv(out, name + ".branch1x1", cin, 64, 1)
        _basic_conv(out, name + ".branch5x5_1", cin, 48, 1)
        _basic_conv(out, name + ".branch5x5_2", 48, 64, 5)
        _basic_conv(out, name + ".branch3x3dbl_1", cin, 64, 1)
        _basic_conv(out, name + ".branch3x3dbl_2", 64, 96, 3)
        _basic_conv(out, name + ".branch3x3dbl_3", 96, 96, 3)
        _basic_conv(out, name + ".branch_pool", cin, pool, 1)
    _basic_conv(out, "Mixed_6a.branch3x3", 288, 384, 3)
    _basic_conv(out, "Mixed_6a.branch3x3dbl_1", 288, 64, 1)
    _basic_conv(out, "Mixed_6a.branch3x3dbl_2", 64, 96, 3)
    _basic_conv(out, "Mixed_6a.branch3x3dbl_3", 96, 96, 3)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        _basic_conv(out, name + ".branch1x1", 768, 192, 1)
        _basic_conv(out, name + ".branch7x7_1", 768, c7, 1)
        _basic_conv(out, name + ".branch7x7_2", c7, c7, 1, 7)
        _basic_conv(out, name + ".branch7x7_3", c7, 192, 7, 1)
        _basic_conv(out, name + ".branch7x7dbl_1", 768, c7, 1)
        _basic_conv(out, name + ".branch7x7dbl_2", c7, c7, 7, 1)
        _basic_conv(out, name + ".branch7x7dbl_3", c7, c7, 1, 7)
        _basic_conv(out, name + ".branch7x7dbl_4", c7, c7, 7, 1)
        _basic_conv(out, name + ".branch7x7dbl_5", c7, 192, 1, 7)
        _basic_conv(out, name + ".branch_pool", 768, 192, 1)
    _basic_conv(out, "Mixed_7a.branch3x3_1", 768, 192, 1)
    _basic_conv(out, "Mixed_7a.branch3x3_2", 192, 320, 3)
    _basic_conv(out, "Mixed_7a.branch7x7x3_1", 768, 192, 1)
    _basic_conv(out, "Mixed_7a.branch7x7x3_2", 192, 192, 1, 7)
    _basic_conv(out, "Mixed_7a.branch7x7x3_3", 192, 192, 7, 1)
    _basic_conv(out, "Mixed_7a.branch7x7x3_4", 192, 192, 3)
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        _basic_conv(out, name + ".branch1x1", cin, 320, 1)
        _basic_conv(out, name + ".branch3x3_1", cin, 384, 1)
        _basic_conv(out, name + ".branch3x3_2a", 384, 384, 1, 3)
        _basic_conv(out, name + ".branch3x3_2b", 384, 384, 3, 1)
        _basic_conv(out, name + ".branch3x3dbl_1", cin, 448, 1)
        _basic_conv(out, name + ".branch3x3dbl_2", 448, 384, 3)
        _basic_conv(out, name + ".branch3x3dbl_3a", 384, 384, 1, 3)
        _basic_conv(out, name + ".branch3x3dbl_3b", 384, 384, 3, 1)
        _basic_conv(out, name + ".branch_pool", cin, 192, 1)
    return out


# torchvision's alexnet().features: (index, in, out, kernel) of its five convolutions; a ReLU
# follows each, and LPIPS takes the features after those ReLUs.
ALEXNET_CONVS = ((0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3))


def lpips_layout(_c=None):
    """The official LPIPS module's state: alexnet.layers.N (torchvision's alexnet.features) and
    one bias-free 1x1 convolution per feature map, lpips_weights.K.main.1."""
    out = {}
    for k, (i, cin, cout, ksize) in enumerate(ALEXNET_CONVS):
        _conv(out, "alexnet.layers.%d" % i, cout, cin, ksize)
        out["lpips_weights.%d.main.1.weight" % k] = (1, cout, 1, 1)
    return out


LAYOUTS = {
    "generator": generator_layout,
    "mapping_network": mapping_network_layout,
    "style_encoder": style_encoder_layout,
    "discriminator": discriminator_layout,
    "fan": fan_layout,
    "inception": inception_layout,
    "lpips": lpips_layout,
}
# The metadata "contents" of the evaluation files (model/inception.h, model/lpips.h).
INCEPTION_CONTENTS = "inception_v3"
LPIPS_CONTENTS = "lpips_alexnet"


# ---------------------------------------------------------------------------------------------
# Reading the official files
# ---------------------------------------------------------------------------------------------

def _torch():
    # torch warns on import when numpy is absent; the converter never needs numpy.
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    try:
        import torch
    except ImportError as e:
        raise ConvertError("this converter needs PyTorch, which %s lacks: run build/model/starganv2-convert-official "
                           "(it uses the python the project was built with) or .venv/bin/python "
                           "model/convert_official.py (%s)" % (sys.executable, e))
    return torch


# What torch.save writes: a zip archive (PyTorch >= 1.6), or the legacy format, a pickle whose
# first object is this magic number (as pickle protocol 2 writes it).
ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."


def checkpoint_kind(path):
    """"zip", "legacy" or None (not something torch.save writes), from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head == LEGACY_MAGIC:
        return "legacy"
    return None


def _describe_start(path):
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "it is empty"
    try:
        text = head.decode("utf-8")
        if all(c.isprintable() or c in "\r\n\t" for c in text):
            first = text.splitlines()[0] if text.strip() else text
            return "it is text starting with %r" % first[:40]
    except UnicodeDecodeError:
        pass
    return "it starts with the bytes %s" % head[:8].hex(" ")


def _safetensors_metadata(path):
    """The "__metadata__" of a safetensors file (an 8-byte header length, then a JSON object), or
    None when the file is not one. Reads the header alone."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return None
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > min(os.fstat(f.fileno()).st_size - 8, 100 * 1024 * 1024):
            return None
        text = f.read(n)
    if not text.startswith(b"{"):
        return None
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__", {})
    return meta if isinstance(meta, dict) else {}


def _describe_safetensors(path, meta):
    """What a safetensors file is to this project: its own model, FAN or style file, or another one."""
    if {"format_version", "config", "domains"} <= set(meta):
        try:
            domains = ", ".join(json.loads(meta["domains"]))
            img_size = json.loads(meta["config"]).get("img_size")
        except (ValueError, AttributeError, TypeError):
            domains, img_size = "?", "?"
        return ("%s is already a model file of this project (safetensors; domains %s, img_size %s%s): nothing to "
                "convert, give it as it is to the element (checkpoint=%s) or to starganv2-translate --checkpoint"
                % (path, domains, img_size, ", written by " + meta["producer"] if meta.get("producer") else "", path))
    if meta.get("contents") == "fan":
        return ("%s is already a FAN file of this project (safetensors): nothing to convert, give it as it is to "
                "the element's fan-checkpoint or to starganv2-train --fan" % path)
    if meta.get("format") == "starganv2-style":
        return ("%s is a style file of this project (safetensors), for the element's style-file and "
                "starganv2-translate --style-file: nothing to convert" % path)
    return ("%s: not a PyTorch checkpoint but a safetensors file that is not one of this project's; this "
            "converter reads the authors' torch.save checkpoints (*_nets_ema.ckpt, wing.ckpt)" % path)


def _load_failure(e):
    """torch.load's reason, without its advice on how to load the file with code execution allowed."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    kept = [l for l in lines if not any(w in l for w in ("weights_only", "Weights only load failed",
                                                           "Please file an issue", "Check the documentation",
                                                           "WeightsUnpickler error"))]
    text = " ".join(kept) or type(e).__name__
    # Whatever torch's wording becomes, the advice to switch the safe unpickler off is never passed on.
    if "weights_only" in text:
        text = type(e).__name__
    return text


def load_pickle(path):
    if not os.path.exists(path):
        raise ConvertError("%s: no such file" % path)
    if os.path.isdir(path):
        raise ConvertError("%s: is a directory, not a checkpoint file" % path)
    try:
        kind = checkpoint_kind(path)
    except OSError as e:
        raise ConvertError("%s: cannot read: %s" % (path, e.strerror or e))
    if kind is None:
        meta = _safetensors_metadata(path)
        if meta is not None:
            raise ConvertError(_describe_safetensors(path, meta))
        raise ConvertError("%s: not a PyTorch checkpoint (neither the zip archive nor the legacy format that "
                           "torch.save writes; %s)" % (path, _describe_start(path)))
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise ConvertError("%s: not a PyTorch checkpoint: a damaged or truncated zip archive (%s)" % (path, e))
        if not any(n.endswith("/data.pkl") for n in names):
            raise ConvertError("%s: not a PyTorch checkpoint: a zip archive, but not one torch.save writes (no "
                               "data.pkl inside; it holds %s)" % (path, _listed(names) or "nothing"))
    torch = _torch()
    try:
        # The safe unpickler (tensors and plain containers only), legacy format included.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure here means "not a readable checkpoint"
        reason = _load_failure(e)
        m = re.search(r"unsupported GLOBAL (\S+)", reason)
        if m:
            raise ConvertError("%s: refused: the checkpoint holds Python objects, not only tensors and plain "
                               "containers (%s); this converter reads weights and never runs code from a file"
                               % (path, m.group(1)))
        what = "zip archive" if kind == "zip" else "legacy-format file"
        raise ConvertError("%s: a torch.save %s that cannot be read as weights (damaged or truncated?): %s"
                           % (path, what, reason))


def strip_module(name):
    # nn.DataParallel adds "module." in front of every name; saved models may carry it.
    while name.startswith("module."):
        name = name[len("module."):]
    return name


def as_state_dict(path, what, obj):
    torch = _torch()
    if not isinstance(obj, collections.abc.Mapping):
        raise ConvertError("%s: \"%s\" is a %s, not a state dict" % (path, what, type(obj).__name__))
    out = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ConvertError("%s: \"%s\" is not a state dict of tensors (entry %r is a %s; an "
                               "optimizer file? use *_nets_ema.ckpt)" % (path, what, k, type(v).__name__))
        name = strip_module(k)
        if name in out:
            raise ConvertError("%s: \"%s\" has %s both with and without \"module.\"" % (path, what, name))
        out[name] = v
    return out


def read_nets(path):
    obj = load_pickle(path)
    if not isinstance(obj, collections.abc.Mapping):
        raise ConvertError("%s: expected a dict of networks {generator, mapping_network, style_encoder}, "
                           "found a %s" % (path, type(obj).__name__))
    keys = [strip_module(str(k)) for k in obj.keys()]
    missing = [n for n in REQUIRED if n not in keys]
    if missing:
        hint = (" (this looks like wing.ckpt: pass it with --wing, or alone as `--wing %s --out wing.safetensors` "
                "for a FAN file)" % path) if "state_dict" in keys else ""
        raise ConvertError("%s: missing %s; found %s. Expected the released *_nets_ema.ckpt%s"
                           % (path, ", ".join(missing), ", ".join(map(str, keys)) or "nothing", hint))
    nets = collections.OrderedDict()
    for k, v in obj.items():
        name = strip_module(str(k))
        if name not in NETWORKS:
            print("note: %s: ignoring \"%s\" (not a network this project uses)" % (path, k), file=sys.stderr)
            continue
        nets[name] = as_state_dict(path, name, v)
    return nets


def read_wing(path):
    obj = load_pickle(path)
    if isinstance(obj, collections.abc.Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    elif isinstance(obj, collections.abc.Mapping) and any(strip_module(str(k)) in REQUIRED for k in obj):
        raise ConvertError("%s: not wing.ckpt but a nets checkpoint (%s): give it as the first argument, with "
                           "--domains" % (path, ", ".join(strip_module(str(k)) for k in obj)))
    return as_state_dict(path, "state_dict", obj)


# ---------------------------------------------------------------------------------------------
# Configuration inference
# ---------------------------------------------------------------------------------------------

def _indices(state, prefix):
    """Sorted distinct integers K of names "prefix.K.<...>"."""
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return sorted({int(m.group(1)) for m in (pat.match(k) for k in state) if m})


def _shape(state, net, name):
    if name not in state:
        raise ConvertError("%s.%s is missing: cannot infer the model configuration (not a StarGAN v2 %s?)"
                           % (net, name, net))
    return tuple(state[name].shape)


def _img_size_from_width(width, where):
    # Every network starts with 2^14 / img_size channels.
    if width <= 0 or 2 ** 14 % width or width & (width - 1):
        raise ConvertError("%s has %d channels; expected 2^14 / img_size" % (where, width))
    return 2 ** 14 // width


def infer_config(nets, overrides):
    g, f, e = nets["generator"], nets["mapping_network"], nets["style_encoder"]
    c = {}

    width = _shape(g, "generator", "from_rgb.weight")[0]
    img_g = _img_size_from_width(width, "generator.from_rgb")
    img_e = _img_size_from_width(_shape(e, "style_encoder", "shared.0.weight")[0], "style_encoder.shared.0")
    if img_g != img_e:
        raise ConvertError("generator says img_size %d but style_encoder says %d" % (img_g, img_e))
    c["img_size"] = overrides.img_size or img_g

    shared = _indices(f, "shared")
    c["hidden_dim"], c["latent_dim"] = _shape(f, "mapping_network", "shared.0.weight")
    domains = _indices(f, "unshared")
    if not domains or domains != list(range(len(domains))):
        raise ConvertError("mapping_network.unshared.K: found K = %s, expected 0..num_domains-1" % domains)
    c["num_domains"] = len(domains)
    last = _indices(f, "unshared.0")
    if not shared or not last:
        raise ConvertError("mapping_network has no shared/unshared linear layers")
    c["style_dim"] = _shape(f, "mapping_network", "unshared.0.%d.weight" % last[-1])[0]
    n_e = len(_indices(e, "unshared"))
    if n_e != c["num_domains"]:
        raise ConvertError("mapping_network has %d domains but style_encoder has %d" % (c["num_domains"], n_e))

    # w_hpf: the high-pass buffer holds kernel / w_hpf; without it, one extra encoder block
    # (the 128 px level kept for the masked skips) still says w_hpf > 0.
    encode = _indices(g, "encode")
    downsampling = len(encode) - 2
    base = _log2(c["img_size"]) - 4
    if downsampling not in (base, base + 1):
        raise ConvertError("generator has %d encode blocks; img_size %d needs %d (w_hpf = 0) or %d (w_hpf > 0)"
                           % (len(encode), c["img_size"], base + 2, base + 3))
    has_skips = downsampling == base + 1
    filt = g.get("hpf.filter")
    if filt is not None:
        if tuple(filt.shape) != (3, 3) or float(filt[1, 1]) == 0:
            raise ConvertError("generator.hpf.filter is not a 3x3 high-pass kernel")
        w = 8.0 / float(filt[1, 1])
        expected = _torch().tensor(HPF_KERNEL, dtype=_torch().float64) / w
        if not _torch().allclose(filt.double(), expected, rtol=1e-5, atol=0):
            raise ConvertError("generator.hpf.filter is not the high-pass kernel divided by a weight")
        w_hpf = round(w, 6)
    else:
        w_hpf = 1.0 if has_skips else 0.0
    if overrides.w_hpf is not None:
        w_hpf = overrides.w_hpf
    if (w_hpf > 0) != has_skips:
        raise ConvertError("w_hpf %g does not fit the generator: %d encode blocks at img_size %d mean w_hpf %s 0"
                           % (w_hpf, len(encode), c["img_size"], ">" if has_skips else "="))
    if filt is None and has_skips and overrides.w_hpf is None:
        print("note: no generator.hpf.filter; assuming w_hpf = 1 (set --w-hpf to change)", file=sys.stderr)
    c["w_hpf"] = float(w_hpf)

    # max_conv_dim caps the channel doubling of every downsampling block; where no block was
    # capped, any cap above the widest block builds the same networks, so keep the official 512.
    cap, widest = None, 0
    blocks = [(g, "generator", "encode.%d" % i) for i in encode[:downsampling]]
    blocks += [(e, "style_encoder", "shared.%d" % i) for i in _indices(e, "shared")]
    if "discriminator" in nets:
        d = nets["discriminator"]
        blocks += [(d, "discriminator", "main.%d" % i) for i in _indices(d, "main")]
    for state, net, p in blocks:
        if p + ".conv2.weight" not in state:
            continue  # plain convolutions and activations between the residual blocks
        dout, din = _shape(state, net, p + ".conv2.weight")[:2]
        widest = max(widest, dout)
        if dout < 2 * din:
            if cap is not None and cap != dout:
                raise ConvertError("inconsistent channel cap: %s.%s has %d channels, another block %d"
                                   % (net, p, dout, cap))
            cap = dout
    c["max_conv_dim"] = overrides.max_conv_dim or cap or max(512, widest)
    return {k: c[k] for k in ("img_size", "style_dim", "latent_dim", "num_domains", "max_conv_dim",
                              "hidden_dim", "w_hpf")}


def _listed(items):
    s = ", ".join(items[:MAX_LISTED])
    return s + (", ... (%d more)" % (len(items) - MAX_LISTED) if len(items) > MAX_LISTED else "")


def check_layout(net, state, config, source):
    expected = LAYOUTS[net](config)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = ["%s (%s, expected %s)" % (k, list(state[k].shape), list(expected[k]))
             for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append("%d missing: %s" % (len(missing), _listed(missing)))
        if unexpected:
            parts.append("%d unexpected: %s" % (len(unexpected), _listed(unexpected)))
        if wrong:
            parts.append("%d with wrong shape: %s" % (len(wrong), _listed(wrong)))
        against = ("the config %s" % json.dumps(config) if config is not None
                   else {"fan": "our FAN's layout", "inception": "torchvision's inception_v3 (the FID feature path)",
                         "lpips": "torchvision's alexnet features and the LPIPS linear layers"}[net])
        raise ConvertError("%s: \"%s\" does not match %s: %s" % (source, net, against, "; ".join(parts)))
    torch = _torch()
    bad = [k for k, v in state.items() if v.dtype not in (torch.float32, torch.float16, torch.bfloat16)]
    if bad:
        raise ConvertError("%s: \"%s\" has non-float tensors: %s" % (source, net, _listed(bad)))


def select_fan(state, source):
    """The FAN keys our network has; wing.ckpt carries more (other stacks, batch counters)."""
    expected = fan_layout()
    kept = collections.OrderedDict((k, state[k]) for k in expected if k in state)
    dropped = [k for k in state if k not in expected]
    if dropped:
        print("note: %s: dropping %d FAN tensors our network does not use (e.g. %s)"
              % (source, len(dropped), ", ".join(dropped[:3])), file=sys.stderr)
    return kept


# ---------------------------------------------------------------------------------------------
# Writing safetensors (the format is small enough to write by hand: no extra dependency)
# ---------------------------------------------------------------------------------------------

def _dtype_names():
    torch = _torch()
    return {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
            torch.uint8: "U8", torch.bool: "BOOL"}


def write_safetensors(path, tensors, metadata):
    names = _dtype_names()
    items = []
    for name, t in tensors:
        if t.dtype not in names:
            raise ConvertError("%s: tensor %s has dtype %s, which safetensors cannot hold" % (path, name, t.dtype))
        items.append((name, t.detach().cpu().contiguous()))
    # Widest items first: every tensor stays aligned to its item size without gaps.
    items.sort(key=lambda it: -it[1].element_size())
    header = collections.OrderedDict()
    header["__metadata__"] = metadata
    offset = 0
    for name, t in items:
        n = t.numel() * t.element_size()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConvertError("%s: directory %s does not exist" % (path, directory))
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for _, t in items:
                if t.numel():
                    f.write(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        # Nothing half-written stays behind, whatever stopped the write (a full disk, Ctrl-C).
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ConvertError("%s: cannot write: %s" % (path, e.strerror or e))
        raise


# ---------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input like any other: one line, exit code 1 (argparse's own is 2)."""

    def error(self, message):
        self.exit(1, "%s: error: %s (see --help)\n" % (self.prog, message))


def program_name():
    """The command as the user ran it: starganv2-convert-official (build tree or installed), or
    the script through a python."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if name.endswith(".py"):
        return "%s %s" % (os.path.basename(sys.executable) or "python", sys.argv[0])
    return name or "starganv2-convert-official"


def parse_args(argv):
    p = _Parser(
        prog=program_name(),
        description="Convert the official StarGAN v2 weights (100000_nets_ema.ckpt, wing.ckpt) into a "
                    "starganv2 safetensors model file; the model configuration is inferred from the "
                    "tensor shapes. With --wing alone (no NETS), write only the FAN (fan.* tensors): the "
                    "file starganv2-train --fan and the element's fan-checkpoint take.",
        epilog="Domain names: celeba_hq = female male; afhq = cat dog wild (in this order). "
               "Exit codes: 0 written; 1 bad input or a failure (one message on stderr, no output file "
               "left behind).")
    p.add_argument("nets", nargs="?", help="the released *_nets_ema.ckpt (or *_nets.ckpt); leave out to "
                                           "convert --wing alone")
    p.add_argument("--wing", help="wing.ckpt with the FAN face-mask network (needed for w_hpf > 0 unless "
                                  "the nets file carries it)")
    p.add_argument("--domains", nargs="+", metavar="NAME",
                   help="domain names in index order, one per domain of the checkpoint (required with NETS)")
    p.add_argument("--inception", metavar="PTH",
                   help="torchvision's inception_v3_google-0cc3c7bd.pth: write the Inception file of "
                        "starganv2-eval's FID (alone, with --out)")
    p.add_argument("--alexnet", metavar="PTH",
                   help="torchvision's alexnet-owt-7be5be79.pth: with --lpips, write the LPIPS file of "
                        "starganv2-eval (alone, with --out)")
    p.add_argument("--lpips", metavar="CKPT",
                   help="the official metrics/lpips_weights.ckpt, or LPIPS v0.1's alex.pth (with --alexnet)")
    p.add_argument("--out", required=True, help="output .safetensors path")
    p.add_argument("--step", type=int, help="training step to record (default: the number the file name "
                                            "starts with, e.g. 100000, else 0)")
    p.add_argument("--img-size", type=int, help="override the inferred img_size")
    p.add_argument("--max-conv-dim", type=int, help="override the inferred max_conv_dim")
    p.add_argument("--w-hpf", type=float, help="override the inferred w_hpf (rewrites generator.hpf.filter)")
    args = p.parse_args(argv)
    metric = [o for o, v in (("--inception", args.inception), ("--alexnet", args.alexnet), ("--lpips", args.lpips))
              if v is not None]
    if metric:
        if args.inception is not None and len(metric) > 1:
            p.error("--inception writes the Inception file and --alexnet/--lpips the LPIPS file: one at a time")
        if args.inception is None and len(metric) != 2:
            p.error("the LPIPS file needs both --alexnet (alexnet-owt-7be5be79.pth) and --lpips (lpips_weights.ckpt)")
        given = [o for o, v in (("NETS", args.nets), ("--wing", args.wing), ("--domains", args.domains),
                                ("--step", args.step), ("--img-size", args.img_size),
                                ("--max-conv-dim", args.max_conv_dim), ("--w-hpf", args.w_hpf)) if v is not None]
        if given:
            p.error("%s: not with %s (the evaluation networks are converted on their own)"
                    % (", ".join(given), " ".join(metric)))
        return args
    if args.nets is None:
        if not args.wing:
            p.error("give the nets checkpoint (e.g. 100000_nets_ema.ckpt), or --wing wing.ckpt alone for a FAN file, "
                    "or --inception / --alexnet with --lpips for the evaluation networks")
        given = [o for o, v in (("--domains", args.domains), ("--step", args.step), ("--img-size", args.img_size),
                                ("--max-conv-dim", args.max_conv_dim), ("--w-hpf", args.w_hpf)) if v is not None]
        if given:
            p.error("%s: only with a nets checkpoint (--wing alone writes the FAN, which has no model config)"
                    % ", ".join(given))
    elif not args.domains:
        p.error("--domains is required with a nets checkpoint (e.g. --domains female male for celeba_hq, "
                "--domains cat dog wild for afhq)")
    return args


def convert_fan(args):
    """--wing alone: the FAN's tensors as fan.*, checked against our FAN's layout."""
    fan = select_fan(read_wing(args.wing), args.wing)
    check_layout("fan", fan, None, args.wing)
    metadata = collections.OrderedDict([
        ("contents", "fan"),
        ("producer", "%s (from %s)" % (PRODUCER, os.path.basename(args.wing))),
    ])
    write_safetensors(args.out, [("fan.%s" % k, v) for k, v in fan.items()], metadata)
    return fan


def _state_of(path):
    obj = load_pickle(path)
    if isinstance(obj, collections.abc.Mapping) and "state_dict" in obj and len(obj) <= 3:
        obj = obj["state_dict"]
    return as_state_dict(path, "state dict", obj)


def _without(state, source, extra, what):
    """state less the names `extra` says the downloaded file carries beyond what we use."""
    dropped = [k for k in state if extra(k)]
    if dropped:
        print("note: %s: dropping %d tensors %s (e.g. %s)" % (source, len(dropped), what, ", ".join(dropped[:2])),
              file=sys.stderr)
    return collections.OrderedDict((k, v) for k, v in state.items() if not extra(k))


def convert_inception(args):
    """torchvision's inception_v3_google-*.pth -> the FID feature path's tensors, torchvision's names."""
    state = _without(_state_of(args.inception), args.inception,
                     lambda k: k.startswith(("AuxLogits.", "fc.")) or k.endswith(".num_batches_tracked"),
                     "the official FID does not use (AuxLogits, fc, BatchNorm counters)")
    check_layout("inception", state, None, args.inception)
    metadata = collections.OrderedDict([
        ("contents", INCEPTION_CONTENTS),
        ("producer", "%s (from %s)" % (PRODUCER, os.path.basename(args.inception))),
    ])
    write_safetensors(args.out, list(state.items()), metadata)
    return state


LPIPS_V01 = re.compile(r"lin(\d+)\.model\.1\.weight$")


def convert_lpips(args):
    """torchvision's alexnet-owt-*.pth and the LPIPS linear weights -> the official LPIPS module's state."""
    alex = _without(_state_of(args.alexnet), args.alexnet, lambda k: k.startswith("classifier."),
                    "of the classifier, which LPIPS does not use")
    state = collections.OrderedDict()
    for k, v in alex.items():
        state[("alexnet.layers." + k[len("features."):]) if k.startswith("features.") else k] = v
    for k, v in _state_of(args.lpips).items():
        m = LPIPS_V01.match(k)  # LPIPS v0.1's alex.pth names the same layers linK.model.1
        state["lpips_weights.%s.main.1.weight" % m.group(1) if m else k] = v
    check_layout("lpips", state, None, "%s + %s" % (args.alexnet, args.lpips))
    metadata = collections.OrderedDict([
        ("contents", LPIPS_CONTENTS),
        ("producer", "%s (from %s, %s)" % (PRODUCER, os.path.basename(args.alexnet), os.path.basename(args.lpips))),
    ])
    write_safetensors(args.out, list(state.items()), metadata)
    return state


def convert(args):
    nets = read_nets(args.nets)
    config = infer_config(nets, args)

    if len(args.domains) != config["num_domains"]:
        raise ConvertError("--domains gives %d names (%s) but %s has %d domains"
                           % (len(args.domains), " ".join(args.domains), args.nets, config["num_domains"]))
    if len(set(args.domains)) != len(args.domains) or any(not d for d in args.domains):
        raise ConvertError("--domains must be distinct, non-empty names: %s" % " ".join(args.domains))

    torch = _torch()
    g = nets["generator"]
    if config["w_hpf"] > 0:
        # The filter is a fixed function of w_hpf; write it even if the file lacks it or it was overridden.
        new = torch.tensor(HPF_KERNEL, dtype=torch.float32) / config["w_hpf"]
        if "hpf.filter" in g:
            new = new.to(g["hpf.filter"].dtype)
        g["hpf.filter"] = new
    else:
        g.pop("hpf.filter", None)

    if args.wing:
        if "fan" in nets:
            print("note: using the FAN from %s instead of the one in %s" % (args.wing, args.nets), file=sys.stderr)
        nets["fan"] = read_wing(args.wing)
    if "fan" in nets:
        nets["fan"] = select_fan(nets["fan"], args.wing or args.nets)
    elif config["w_hpf"] > 0:
        print("note: w_hpf > 0 but no FAN given (--wing wing.ckpt); the model file will need the FAN "
              "from another file for face masks", file=sys.stderr)

    for net, state in nets.items():
        check_layout(net, state, config, args.wing if (net == "fan" and args.wing) else args.nets)

    step = args.step
    if step is None:
        m = re.match(r"(\d+)_", os.path.basename(args.nets))
        step = int(m.group(1)) if m else 0
    metadata = collections.OrderedDict([
        ("format_version", str(FORMAT_VERSION)),
        ("config", json.dumps(config, separators=(",", ":"))),
        ("domains", json.dumps(list(args.domains), separators=(",", ":"))),
        ("producer", "%s (from %s%s)" % (PRODUCER, os.path.basename(args.nets),
                                         ", " + os.path.basename(args.wing) if args.wing else "")),
        ("step", str(step)),
    ])
    tensors = [("%s.%s" % (net, k), v) for net in NETWORKS if net in nets for k, v in nets[net].items()]
    write_safetensors(args.out, tensors, metadata)
    return config, nets, step


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.inception is not None:
            state = convert_inception(args)
            print("wrote %s: Inception-v3 for FID (%d tensors)" % (args.out, len(state)))
            return 0
        if args.alexnet is not None:
            state = convert_lpips(args)
            print("wrote %s: AlexNet and linear layers for LPIPS (%d tensors)" % (args.out, len(state)))
            return 0
        if args.nets is None:
            fan = convert_fan(args)
        else:
            config, nets, step = convert(args)
    except ConvertError as e:
        print("%s: error: %s" % (program_name(), e), file=sys.stderr)
        return 1
    if args.nets is None:
        print("wrote %s: the FAN (%d tensors fan.*), for starganv2-train --fan and the element's fan-checkpoint"
              % (args.out, len(fan)))
        return 0
    counts = ", ".join("%s %d" % (n, len(s)) for n, s in nets.items())
    print("wrote %s: config %s, domains %s, step %d, tensors: %s"
          % (args.out, json.dumps(config), " ".join(args.domains), step, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
