#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz target: small valid files of every kind it reads.

Usage: make_corpus.py STARGANV2_INSPECT OUT_DIR
The model file's tensor list comes from `starganv2-inspect --layout`, so the seeds always match
the networks' current layout. Uses only the standard library (the safetensors format is simple).
"""
import json
import random
import struct
import subprocess
import sys
from pathlib import Path

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def safetensors(tensors, metadata):
    """tensors: list of (name, dtype, shape); data are small random values."""
    rng = random.Random(1)
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        if dtype == "F32":
            blob = struct.pack("<%df" % n, *[rng.uniform(-0.1, 0.1) for _ in range(n)])
        else:
            blob = bytes(n * SIZES[dtype])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def main():
    inspect, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    config = {"img_size": 32, "style_dim": 2, "latent_dim": 1, "num_domains": 2, "max_conv_dim": 2,
              "hidden_dim": 2, "w_hpf": 0, "base_dim": 1}
    layout = json.loads(subprocess.run([inspect, "--layout", json.dumps(config)], check=True,
                                       capture_output=True, text=True).stdout)
    nets = ("generator.", "mapping_network.", "style_encoder.")
    tensors = [(name, "F32", shape) for name, _, shape in layout["tensors"] if name.startswith(nets)]
    meta = {"format_version": "1", "config": json.dumps(config), "domains": '["a","b"]',
            "producer": "make_corpus.py", "step": "0"}
    (out / "model-tiny.safetensors").write_bytes(safetensors(tensors, meta))
    (out / "style.safetensors").write_bytes(safetensors([("style", "F32", [2])], {"format": "starganv2-style"}))
    (out / "style-f16-2d.safetensors").write_bytes(safetensors([("style", "F16", [1, 64])], {}))
    (out / "plain.safetensors").write_bytes(safetensors([("a", "I64", [2, 3]), ("b", "BF16", [0])], {"k": "v"}))


if __name__ == "__main__":
    main()
