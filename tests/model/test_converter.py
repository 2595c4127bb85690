#!/usr/bin/env python3
"""Tests model/convert_official.py on files written here in the layout of the authors' releases.

usage: test_converter.py PYTHON_WITH_TORCH STARGANV2_INSPECT [CONVERTER_COMMAND]   (meson passes all)

The official-layout state dicts are built from the names and shapes of our own C++ networks
(`starganv2-inspect --layout CONFIG`), which the parity test checks against the official code
and the fixtures, so no official code is needed and the converter's own layout tables are
checked against an independent source. They are filled with random values, saved with
torch.save the way the authors' files were (legacy non-zip format, "module." prefixes, wing.ckpt
with extra tensors and BatchNorm counters), converted, and the output is read back here (by
hand, byte for byte) and by the C++ loader (`starganv2-inspect --load`).
"""

import os
import sys

try:
    import torch
except ImportError:
    # Started by meson with the system python; continue under the python that has torch.
    if len(sys.argv) > 1 and not os.environ.get("STARGANV2_CONVERTER_TEST_REEXEC"):
        os.environ["STARGANV2_CONVERTER_TEST_REEXEC"] = "1"
        os.execv(sys.argv[1], [sys.argv[1], os.path.abspath(__file__)] + sys.argv[1:])
    print("test_converter.py: needs torch; pass the venv python as the first argument", file=sys.stderr)
    sys.exit(1)

import collections
import json
import pickle
import shutil
import struct
import subprocess
import tempfile
import unittest
import zipfile

if len(sys.argv) < 3:
    print(__doc__, file=sys.stderr)
    sys.exit(2)
PYTHON, INSPECT = sys.argv[1], sys.argv[2]
# The command the build makes (build/model/starganv2-convert-official), when given.
COMMAND = sys.argv[3] if len(sys.argv) > 3 and not sys.argv[3].startswith("-") else None
del sys.argv[1:4 if COMMAND else 3]  # the rest goes to unittest
SOURCE_ROOT = os.environ.get("STARGANV2_SOURCE_ROOT",
                             os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONVERTER = os.path.join(SOURCE_ROOT, "model", "convert_official.py")
sys.path.insert(0, os.path.join(SOURCE_ROOT, "model"))
import convert_official  # noqa: E402  (for its layout tables)

HPF_KERNEL = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
          "U8": torch.uint8, "BOOL": torch.bool}

# The official 256 px CelebA-HQ shape (w_hpf 1, 2 domains, 512 hidden) with narrow convolutions
# to keep the files small; a 64 px AFHQ-like one (3 domains, w_hpf 0); a 32 px one with an
# unusual w_hpf whose value must be read back from the filter.
CELEBA = dict(img_size=256, style_dim=64, latent_dim=16, num_domains=2, max_conv_dim=32, hidden_dim=512, w_hpf=1.0)
AFHQ = dict(img_size=64, style_dim=16, latent_dim=8, num_domains=3, max_conv_dim=64, hidden_dim=32, w_hpf=0.0)
ODD = dict(img_size=32, style_dim=8, latent_dim=4, num_domains=2, max_conv_dim=16, hidden_dim=16, w_hpf=0.25)

_layouts = {}


def cpp_layout(config):
    """{network: OrderedDict(name -> shape)} of our C++ networks for config."""
    key = json.dumps(config, sort_keys=True)
    if key not in _layouts:
        r = subprocess.run([INSPECT, "--layout", json.dumps(config)], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("starganv2-inspect --layout failed: " + r.stderr)
        nets = collections.OrderedDict()
        for name, dtype, shape in json.loads(r.stdout)["tensors"]:
            net, rest = name.split(".", 1)
            nets.setdefault(net, collections.OrderedDict())[rest] = tuple(shape)
        _layouts[key] = nets
    return _layouts[key]


def cpp_metric_layout(network):
    """OrderedDict(name -> shape) of our C++ evaluation network ("inception" or "lpips")."""
    if network not in _layouts:
        r = subprocess.run([INSPECT, "--layout", network], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("starganv2-inspect --layout %s failed: %s" % (network, r.stderr))
        _layouts[network] = collections.OrderedDict((n, tuple(shape)) for n, _, shape in json.loads(r.stdout)["tensors"])
    return _layouts[network]


def random_state(layout, config, seed):
    g = torch.Generator().manual_seed(seed)
    state = collections.OrderedDict()
    for name, shape in layout.items():
        if name == "hpf.filter":
            state[name] = HPF_KERNEL / config["w_hpf"]
        else:
            state[name] = torch.randn(shape, generator=g)
    return state


def read_safetensors(path):
    """Our own minimal reader, independent of the C++ one."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    spans = []
    for name, e in header.items():
        b, end = e["data_offsets"]
        spans.append((b, end))
        data = bytearray(blob[8 + n + b:8 + n + end])
        dtype = DTYPES[e["dtype"]]
        t = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"])
    return n, meta, tensors, sorted(spans), len(blob)


class ConverterTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="starganv2-converter-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def convert(self, *args):
        return subprocess.run([PYTHON, CONVERTER] + list(args), capture_output=True, text=True)

    def assert_converts(self, *args):
        r = self.convert(*args)
        self.assertEqual(r.returncode, 0, "converter failed:\n" + r.stdout + r.stderr)
        return r

    def assert_fails(self, expected, *args, out=None):
        r = self.convert(*args)
        self.assertNotEqual(r.returncode, 0, "converter accepted bad input:\n" + r.stdout + r.stderr)
        self.assertEqual(r.returncode, 1, "bad input must exit 1:\n" + r.stderr)
        self.assertIn(expected, r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        # The one thing never to suggest: loading the pickle with code execution allowed.
        self.assertNotIn("weights_only", r.stdout + r.stderr)
        if out:
            self.assertFalse(os.path.exists(out), "output written despite the error")
        self.assertFalse([f for f in os.listdir(self.dir) if ".tmp-" in f], "temporary file left behind")
        return r

    def official_files(self, config, seed=0, module_prefix=True, legacy=True, with_discriminator=False,
                       fan_in_nets=False, name="100000_nets_ema.ckpt"):
        """Writes the nets file (and returns the state dicts) the way the authors' code saved them."""
        layout = cpp_layout(config)
        nets = collections.OrderedDict()
        names = ["generator", "mapping_network", "style_encoder"]
        if with_discriminator:
            names.append("discriminator")
        for i, net in enumerate(names):
            nets[net] = random_state(layout[net], config, seed * 10 + i)
        if fan_in_nets:
            nets["fan"] = random_state(layout["fan"], config, seed * 10 + 9)
        saved = collections.OrderedDict()
        for net, state in nets.items():
            s = collections.OrderedDict((("module." if module_prefix else "") + k, v) for k, v in state.items())
            if net == "fan":  # the official model's state_dict includes BatchNorm counters
                for k in list(state):
                    if k.endswith("running_var"):
                        s[k.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
            saved[net] = s
        path = self.path(name)
        torch.save(saved, path, _use_new_zipfile_serialization=not legacy)
        return path, nets

    def wing_file(self, config, seed=5):
        """wing.ckpt: the FAN of a 4-stack model whose first stack is ours, plus counters."""
        fan = random_state(cpp_layout(config)["fan"], config, seed)
        state = collections.OrderedDict(fan)
        for k in list(fan):
            if k.endswith("running_var"):
                state[k.replace("running_var", "num_batches_tracked")] = torch.tensor(17)
        state["m1.b1_4.conv1.weight"] = torch.randn(128, 256, 3, 3)
        state["bl0.weight"] = torch.randn(256, 256, 1, 1)
        state["l3.weight"] = torch.randn(99, 256, 1, 1)
        path = self.path("wing.ckpt")
        torch.save({"state_dict": state}, path, _use_new_zipfile_serialization=False)
        return path, fan

    def check_output(self, out, config, domains, nets, step=100000):
        header_len, meta, tensors, spans, size = read_safetensors(out)
        self.assertEqual((8 + header_len) % 8, 0, "data area not 8-byte aligned")
        pos = 0
        for b, e in spans:
            self.assertEqual(b, pos, "hole or overlap in the data area")
            pos = e
        self.assertEqual(8 + header_len + pos, size)

        self.assertEqual(meta["format_version"], "1")
        self.assertEqual(json.loads(meta["config"]), config)
        self.assertEqual(json.loads(meta["domains"]), domains)
        self.assertEqual(meta["step"], str(step))
        self.assertIn("starganv2-convert-official", meta["producer"])

        expected = {"%s.%s" % (net, k): v for net, state in nets.items() for k, v in state.items()}
        self.assertEqual(sorted(tensors), sorted(expected))
        for name, t in expected.items():
            self.assertEqual(tensors[name].dtype, t.dtype, name)
            self.assertTrue(torch.equal(tensors[name], t), name + " differs")

        # The C++ side loads every network in the file at the file's own config.
        r = subprocess.run([INSPECT, "--load", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "C++ loader rejected the file:\n" + r.stdout + r.stderr)
        for net in nets:
            self.assertIn("loaded " + net, r.stderr)
        self.assertNotIn("unused", r.stderr)

    # -----------------------------------------------------------------------------------------

    def test_layout_tables_match_the_cpp_networks(self):
        # The small test configs and the official CelebA-HQ one (w_hpf 0 differs only in the
        # generator's block count, which AFHQ covers).
        for config in (CELEBA, AFHQ, ODD, dict(CELEBA, max_conv_dim=512)):
            cpp = cpp_layout(config)
            for net, layout in cpp.items():
                py = convert_official.LAYOUTS[net](config)
                self.assertEqual(dict(py), dict(layout), "%s layout differs at %s" % (net, config))

    def test_celeba_hq_legacy_with_module_prefix_and_wing(self):
        nets_path, nets = self.official_files(CELEBA, seed=1, module_prefix=True, legacy=True)
        wing_path, fan = self.wing_file(CELEBA)
        out = self.path("celeba_hq.safetensors")
        r = self.assert_converts(nets_path, "--wing", wing_path, "--domains", "female", "male", "--out", out)
        self.assertIn("dropping", r.stderr)  # the extra wing.ckpt tensors are reported
        nets["generator"]["hpf.filter"] = HPF_KERNEL / CELEBA["w_hpf"]
        nets["fan"] = fan
        self.check_output(out, CELEBA, ["female", "male"], nets)

    def test_afhq_zip_format_with_discriminator(self):
        nets_path, nets = self.official_files(AFHQ, seed=2, module_prefix=False, legacy=False,
                                              with_discriminator=True, name="050000_nets.ckpt")
        out = self.path("afhq.safetensors")
        self.assert_converts(nets_path, "--domains", "cat", "dog", "wild", "--out", out)
        self.check_output(out, AFHQ, ["cat", "dog", "wild"], nets, step=50000)

    def test_w_hpf_read_from_filter_and_fan_from_the_nets_file(self):
        nets_path, nets = self.official_files(ODD, seed=3, fan_in_nets=True, name="nets_ema.ckpt")
        out = self.path("odd.safetensors")
        self.assert_converts(nets_path, "--domains", "a", "b", "--out", out, "--step", "7")
        self.check_output(out, ODD, ["a", "b"], nets, step=7)

        # Overriding w_hpf rewrites the filter to match.
        self.assert_converts(nets_path, "--domains", "a", "b", "--out", out, "--w-hpf", "1")
        _, meta, tensors, _, _ = read_safetensors(out)
        self.assertEqual(json.loads(meta["config"])["w_hpf"], 1.0)
        self.assertTrue(torch.equal(tensors["generator.hpf.filter"], HPF_KERNEL))

    def test_missing_filter_means_w_hpf_1(self):
        nets_path, nets = self.official_files(CELEBA, seed=4)
        saved = torch.load(nets_path, weights_only=True)
        del saved["generator"]["module.hpf.filter"]
        torch.save(saved, nets_path, _use_new_zipfile_serialization=False)
        out = self.path("nofilter.safetensors")
        r = self.assert_converts(nets_path, "--domains", "female", "male", "--out", out)
        self.assertIn("assuming w_hpf = 1", r.stderr)
        _, meta, tensors, _, _ = read_safetensors(out)
        self.assertEqual(json.loads(meta["config"]), CELEBA)
        self.assertTrue(torch.equal(tensors["generator.hpf.filter"], HPF_KERNEL))

    # -- bad input: one clear error, no traceback, no output file -------------------------------

    def test_rejects_wrong_domain_count(self):
        nets_path, _ = self.official_files(AFHQ)
        out = self.path("x.safetensors")
        self.assert_fails("--domains gives 2 names (female male) but", nets_path, "--domains", "female", "male",
                          "--out", out, out=out)
        self.assert_fails("must be distinct", nets_path, "--domains", "cat", "cat", "dog", "--out", out, out=out)

    def test_rejects_missing_and_unreadable_files(self):
        out = self.path("x.safetensors")
        missing = self.path("nope.ckpt")
        self.assert_fails(missing + ": no such file", missing, "--domains", "a", "b", "--out", out, out=out)
        self.assert_fails("is a directory", self.dir, "--domains", "a", "b", "--out", out, out=out)
        garbage = self.path("garbage.ckpt")
        with open(garbage, "wb") as f:
            f.write(b"\x9a" + os.urandom(999))
        self.assert_fails(garbage + ": not a PyTorch checkpoint", garbage, "--domains", "a", "b",
                          "--out", out, out=out)
        nets_path, _ = self.official_files(AFHQ)
        self.assert_fails("does not exist", nets_path, "--domains", "cat", "dog", "wild",
                          "--out", self.path("no/dir/x.safetensors"))
        self.assert_fails("no such file", nets_path, "--wing", self.path("wing-missing.ckpt"),
                          "--domains", "cat", "dog", "wild", "--out", out, out=out)

    def test_refuses_code_in_pickles(self):
        marker = self.path("executed")

        class Payload:
            def __reduce__(self):
                return (os.system, ("touch " + marker,))

        evil = self.path("evil.ckpt")
        torch.save({"generator": Payload()}, evil, _use_new_zipfile_serialization=False)
        out = self.path("x.safetensors")
        self.assert_fails(evil + ": refused: the checkpoint holds Python objects", evil, "--domains", "a", "b",
                          "--out", out, out=out)
        self.assertFalse(os.path.exists(marker), "the converter executed code from a pickle")
        # The same in the zip format, and as the FAN file.
        evil_zip = self.path("evil-zip.ckpt")
        torch.save({"state_dict": Payload()}, evil_zip)
        r = self.assert_fails("posix.system", "--wing", evil_zip, "--out", out, out=out)
        self.assertIn(evil_zip + ": refused", r.stderr)
        self.assertFalse(os.path.exists(marker), "the converter executed code from a pickle")

    def test_names_what_a_non_checkpoint_is_not(self):
        out = self.path("x.safetensors")
        cases = []
        text = self.path("notes.ckpt")
        with open(text, "w") as f:
            f.write("hello, not weights\n")
        cases.append((text, "it is text starting with 'hello, not weights'"))
        empty = self.path("empty.ckpt")
        open(empty, "wb").close()
        cases.append((empty, "it is empty"))
        archive = self.path("archive.ckpt")
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("readme.txt", "x")
        cases.append((archive, "a zip archive, but not one torch.save writes"))
        plain = self.path("plain.pkl")
        with open(plain, "wb") as f:
            pickle.dump({"generator": {}}, f, protocol=4)
        cases.append((plain, "neither the zip archive nor the legacy format"))
        legacy = self.path("truncated.ckpt")
        torch.save({"generator": {"w": torch.zeros(4096)}}, legacy, _use_new_zipfile_serialization=False)
        with open(legacy, "rb") as f:
            blob = f.read()
        with open(legacy, "wb") as f:
            f.write(blob[:len(blob) // 2])
        cases.append((legacy, "legacy-format file that cannot be read as weights"))
        for path, what in cases:
            r = self.assert_fails(path + ": ", path, "--domains", "a", "b", "--out", out, out=out)
            self.assertIn(what, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, "one message:\n" + r.stderr)

    def test_recognises_this_projects_own_files(self):
        # A converted model, the FAN file and a safetensors file of another origin, given back to
        # the converter: each is named for what it is, in one line, and nothing is written.
        nets_path, _ = self.official_files(AFHQ)
        model = self.path("afhq.safetensors")
        self.assert_converts(nets_path, "--domains", "cat", "dog", "wild", "--out", model)
        wing_path, _ = self.wing_file(CELEBA)
        fan = self.path("wing.safetensors")
        self.assert_converts("--wing", wing_path, "--out", fan)
        other = self.path("other.safetensors")
        text = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
        with open(other, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"\0" * 4)
        out = self.path("again.safetensors")
        for path, args, what in [
                (model, [model, "--domains", "cat", "dog", "wild"],
                 model + " is already a model file of this project (safetensors; domains cat, dog, wild, img_size 64"),
                (model, ["--wing", model], model + " is already a model file of this project"),
                (fan, [fan, "--domains", "a", "b"], fan + " is already a FAN file of this project"),
                (other, [other, "--domains", "a", "b"],
                 other + ": not a PyTorch checkpoint but a safetensors file that is not one of this project's")]:
            r = self.assert_fails(what, *args, "--out", out, out=out)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, "one message:\n" + r.stderr)
            self.assertNotIn("starts with the bytes", r.stderr)

    # -- the FAN alone: --wing wing.ckpt --out wing.safetensors ---------------------------------

    def test_wing_alone_writes_a_fan_file(self):
        wing_path, fan = self.wing_file(CELEBA)
        out = self.path("wing.safetensors")
        r = self.assert_converts("--wing", wing_path, "--out", out)
        self.assertIn("wrote " + out, r.stdout)
        _, meta, tensors, _, _ = read_safetensors(out)
        self.assertEqual(meta.get("contents"), "fan")
        self.assertNotIn("format_version", meta)  # not a model file: no config, no domains
        self.assertEqual(sorted(tensors), sorted("fan." + k for k in fan))
        for k, v in fan.items():
            self.assertTrue(torch.equal(tensors["fan." + k], v), k + " differs")
        # The C++ FAN loads it (the trainer's --fan and the element's fan-checkpoint read it so).
        r = subprocess.run([INSPECT, "--load", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "C++ loader rejected the FAN file:\n" + r.stdout + r.stderr)
        self.assertIn("loaded fan", r.stderr)

    def test_wing_alone_refuses_model_options(self):
        wing_path, _ = self.wing_file(CELEBA)
        out = self.path("wing.safetensors")
        self.assert_fails("--domains: only with a nets checkpoint", "--wing", wing_path, "--domains", "a", "b",
                          "--out", out, out=out)
        self.assert_fails("give the nets checkpoint", "--out", out, out=out)
        # A nets file given as the FAN is named as what it is not.
        nets_path, _ = self.official_files(AFHQ)
        self.assert_fails("not wing.ckpt but a nets checkpoint", "--wing", nets_path, "--out", out, out=out)
        # A state dict that is not the FAN's.
        other = self.path("other.ckpt")
        torch.save({"state_dict": {"conv.weight": torch.zeros(3, 3)}}, other)
        self.assert_fails("does not match our FAN's layout", "--wing", other, "--out", out, out=out)

    def test_rejects_wrong_layouts(self):
        out = self.path("x.safetensors")
        listed = self.path("list.ckpt")
        torch.save([torch.zeros(1)], listed, _use_new_zipfile_serialization=False)
        self.assert_fails("expected a dict of networks", listed, "--domains", "a", "b", "--out", out, out=out)

        wing_path, _ = self.wing_file(CELEBA)
        self.assert_fails("looks like wing.ckpt", wing_path, "--domains", "a", "b", "--out", out, out=out)

        nets_path, _ = self.official_files(CELEBA)
        saved = torch.load(nets_path, weights_only=True)

        def variant(mutate, name):
            s = collections.OrderedDict((k, collections.OrderedDict(v)) for k, v in saved.items())
            mutate(s)
            p = self.path(name)
            torch.save(s, p, _use_new_zipfile_serialization=False)
            return p

        p = variant(lambda s: s.pop("style_encoder"), "no-e.ckpt")
        self.assert_fails("missing style_encoder", p, "--domains", "a", "b", "--out", out, out=out)
        p = variant(lambda s: s["generator"].pop("module.decode.3.norm2.fc.bias"), "missing.ckpt")
        self.assert_fails("\"generator\" does not match the config", p, "--domains", "a", "b", "--out", out, out=out)
        self.assert_fails("1 missing: decode.3.norm2.fc.bias", p, "--domains", "a", "b", "--out", out, out=out)
        p = variant(lambda s: s["mapping_network"].__setitem__("module.unshared.1.2.weight", torch.zeros(512, 5)),
                    "shape.ckpt")
        self.assert_fails("unshared.1.2.weight ([512, 5], expected [512, 512])", p, "--domains", "a", "b",
                          "--out", out, out=out)
        p = variant(lambda s: s["generator"].__setitem__("module.extra.weight", torch.zeros(1)), "extra.ckpt")
        self.assert_fails("1 unexpected: extra.weight", p, "--domains", "a", "b", "--out", out, out=out)
        p = variant(lambda s: s.__setitem__("generator", {"step": 5}), "optim.ckpt")
        self.assert_fails("not a state dict of tensors", p, "--domains", "a", "b", "--out", out, out=out)
        def drop_blocks(s):
            for k in [k for k in s["generator"] if k.startswith(("module.encode.5.", "module.encode.6."))]:
                del s["generator"][k]
        p = variant(drop_blocks, "blocks.ckpt")
        self.assert_fails("generator has 5 encode blocks; img_size 256 needs 6 (w_hpf = 0) or 7 (w_hpf > 0)",
                          p, "--domains", "a", "b", "--out", out, out=out)

        nets_path, _ = self.official_files(AFHQ)
        self.assert_fails("does not fit the generator", nets_path, "--domains", "cat", "dog", "wild",
                          "--w-hpf", "1", "--out", out, out=out)

    def test_help_runs(self):
        r = self.convert("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--domains", r.stdout)
        self.assertIn("Exit codes: 0 written; 1 bad input", " ".join(r.stdout.split()))

    def test_usage_errors_exit_1(self):
        # argparse's own code is 2; bad input is 1 everywhere in the project.
        for args in (["--no-such-option"], [], ["x.ckpt", "--domains", "a"], ["x.ckpt", "--out", "y", "--step", "many"]):
            r = self.convert(*args)
            self.assertEqual(r.returncode, 1, "%s:\n%s" % (args, r.stderr))
            self.assertIn("error:", r.stderr)

    # ---- The evaluation networks (FID's Inception-v3, LPIPS) ---------------------------------

    def torchvision_inception(self, seed=3):
        """inception_v3_google-0cc3c7bd.pth as torchvision's Inception3 state dict: our layout plus
        the AuxLogits and fc heads and BatchNorm counters, legacy format (a 2018 file)."""
        g = torch.Generator().manual_seed(seed)
        ours = collections.OrderedDict((k, torch.randn(s, generator=g)) for k, s in cpp_metric_layout("inception").items())
        state = collections.OrderedDict(ours)
        for k in list(ours):
            if k.endswith("running_var"):
                state[k.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
        state["AuxLogits.conv0.conv.weight"] = torch.randn(128, 768, 1, 1)
        state["AuxLogits.fc.weight"] = torch.randn(1000, 768)
        state["fc.weight"] = torch.randn(1000, 2048)
        state["fc.bias"] = torch.randn(1000)
        path = self.path("inception_v3_google-0cc3c7bd.pth")
        torch.save(state, path, _use_new_zipfile_serialization=False)
        return path, ours

    def lpips_files(self, seed=4, v01=False):
        """alexnet-owt-7be5be79.pth (features + classifier, zip format) and the LPIPS linear
        weights: the official lpips_weights.ckpt names, or LPIPS v0.1 alex.pth's linK.model.1."""
        g = torch.Generator().manual_seed(seed)
        ours = collections.OrderedDict((k, torch.randn(s, generator=g)) for k, s in cpp_metric_layout("lpips").items())
        alex = collections.OrderedDict(("features." + k[len("alexnet.layers."):], v) for k, v in ours.items()
                                       if k.startswith("alexnet.layers."))
        alex["classifier.1.weight"] = torch.randn(64, 9216)
        alex["classifier.6.bias"] = torch.randn(1000)
        lin = collections.OrderedDict()
        for k, v in ours.items():
            if k.startswith("lpips_weights."):
                lin["lin%s.model.1.weight" % k.split(".")[1] if v01 else k] = v
        a, l = self.path("alexnet-owt-7be5be79.pth"), self.path("alex.pth" if v01 else "lpips_weights.ckpt")
        torch.save(alex, a)
        torch.save(lin, l, _use_new_zipfile_serialization=False)
        return a, l, ours

    def check_metric_output(self, out, ours, contents):
        _, meta, tensors, _, _ = read_safetensors(out)
        self.assertEqual(meta["contents"], contents)
        self.assertEqual(sorted(tensors), sorted(ours))
        for k, v in ours.items():
            self.assertTrue(torch.equal(tensors[k], v), k + " differs")
        r = subprocess.run([INSPECT, "--load", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "C++ loader rejected the file:\n" + r.stdout + r.stderr)
        self.assertIn("loaded %s: %d tensors" % ("inception" if contents == "inception_v3" else "lpips", len(ours)),
                      r.stderr)
        self.assertNotIn("unused", r.stderr)

    def test_metric_layout_tables_match_the_cpp_networks(self):
        for net in ("inception", "lpips"):
            self.assertEqual(dict(convert_official.LAYOUTS[net]()), dict(cpp_metric_layout(net)), net)
        # torchvision's names: e.g. the factorised 7x1 convolution of Mixed_6b.
        self.assertEqual(cpp_metric_layout("inception")["Mixed_6b.branch7x7_3.conv.weight"], (192, 128, 7, 1))
        self.assertEqual(len(cpp_metric_layout("inception")), 470)

    def test_inception_file_converts_and_loads(self):
        path, ours = self.torchvision_inception()
        out = self.path("inception.safetensors")
        r = self.assert_converts("--inception", path, "--out", out)
        self.assertIn("dropping", r.stderr)  # AuxLogits, fc and the counters, said once
        self.check_metric_output(out, ours, "inception_v3")

    def test_lpips_file_from_the_official_ckpt_and_from_v01_alex_pth(self):
        for v01 in (False, True):
            alex, lin, ours = self.lpips_files(v01=v01)
            out = self.path("lpips.safetensors")
            self.assert_converts("--alexnet", alex, "--lpips", lin, "--out", out)
            self.check_metric_output(out, ours, "lpips_alexnet")

    def test_metric_files_refuse_wrong_inputs(self):
        alex, lin, _ = self.lpips_files()
        inception = self.path("inception_v3_google-0cc3c7bd.pth")  # never read: usage errors come first
        out = self.path("out.safetensors")
        # A file where another is expected: named by what is missing.
        self.assert_fails("470 missing", "--inception", alex, "--out", out, out=out)
        self.assert_fails("10 missing: alexnet.layers.0.weight", "--alexnet", lin, "--lpips", lin, "--out", out,
                          out=out)
        # A linear layer of the wrong width.
        bad = torch.load(lin, weights_only=True)
        bad["lpips_weights.1.main.1.weight"] = torch.randn(1, 64, 1, 1)
        torch.save(bad, self.path("bad.ckpt"))
        self.assert_fails("lpips_weights.1.main.1.weight ([1, 64, 1, 1], expected [1, 192, 1, 1])",
                          "--alexnet", alex, "--lpips", self.path("bad.ckpt"), "--out", out, out=out)
        # Usage: the two LPIPS inputs together, nothing of a model conversion alongside.
        for args, expected in ((["--alexnet", alex, "--out", out], "needs both --alexnet"),
                               (["--inception", inception, "--lpips", lin, "--out", out], "one at a time"),
                               (["--inception", inception, "--domains", "a", "b", "--out", out], "--domains: not with")):
            r = self.convert(*args)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(expected, r.stderr)
            self.assertFalse(os.path.exists(out))

    @unittest.skipUnless(COMMAND, "no converter command given")
    def test_build_tree_command_runs_as_a_plain_command(self):
        # build/model/starganv2-convert-official: the build's python with torch in its first line.
        with open(COMMAND) as f:
            first = f.readline()
        self.assertTrue(first.startswith("#!"), first)
        self.assertTrue(os.access(COMMAND, os.X_OK))
        wing_path, fan = self.wing_file(CELEBA)
        out = self.path("wing.safetensors")
        r = subprocess.run([COMMAND, "--wing", wing_path, "--out", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(read_safetensors(out)[2]), len(fan))
        r = subprocess.run([COMMAND, "--bogus"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("starganv2-convert-official: error:", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
