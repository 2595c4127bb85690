#!/usr/bin/env python3
"""The summary table of tests/gpu/check.sh: device, gpu suite results, engine and trainer
benchmarks (each against the baseline measured in the same run) and the time of every step, as
Markdown on stdout. Reads what check.sh wrote under --out and meson's test log under --build."""

import argparse
import csv
import json
import os
import sys


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def device_line():
    try:
        import torch

        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
        return f"{name} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    except Exception as e:  # the summary must not fail for want of a device name
        return f"unknown ({e})"


def suite_results(build):
    """The tests of the last `meson test` run (check.sh runs only the gpu suite)."""
    path = os.path.join(build, "meson-logs", "testlog.json")
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    t = json.loads(line)
                    rows.append((t["name"].split(":")[-1], t["result"], t.get("duration", 0.0)))
    return rows


def engine_table(graphs, eager):
    """One row per (config, batch): the naive fp32 baseline, then every precision with graphs and
    without, as ms per call and the speed-up over the naive baseline of the same run."""
    cells = {}
    order = []
    baseline = {}
    for run, rows in (("graph", graphs), ("eager", eager)):
        for r in rows:
            key = (r["config"], int(r["batch"]))
            if key not in order:
                order.append(key)
            if r["path"].startswith("naive"):
                baseline.setdefault(key, float(r["ms_per_call"]))
                continue
            label = r["precision"]
            note = ""
            if run == "graph" and r["graphs"] != "on":
                note = " (no graph!)"
            cells[(key, run, label)] = f"{float(r['ms_per_call']):.3f} ({float(r['vs_naive']):.1f}x){note}"
    precisions = ["fp32", "fp16", "bf16"]
    head = ["config", "batch", "naive fp32 eager ms"]
    head += [f"{p} graph ms" for p in precisions] + [f"{p} no graph ms" for p in precisions]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in order:
        row = [key[0], str(key[1]), f"{baseline.get(key, float('nan')):.3f}"]
        row += [cells.get((key, "graph", p), "-") for p in precisions]
        row += [cells.get((key, "eager", p), "-") for p in precisions]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--total", default="")
    a = ap.parse_args()

    print()
    print(f"## GPU check: {device_line()}")
    print()
    suite = suite_results(a.build)
    if suite:
        print("| gpu suite test | result | s |")
        print("|---|---|---|")
        for name, result, duration in suite:
            print(f"| {name} | {result} | {duration:.1f} |")
        print()

    graphs = read_csv(os.path.join(a.out, "bench-graphs.csv"))
    eager = read_csv(os.path.join(a.out, "bench-eager.csv"))
    if graphs or eager:
        print("Engine (`starganv2-bench`, official 256² configs, random weights; uint8 crops in and out, FAN+G")
        print("for CelebA-HQ, G for AFHQ): median ms per call; in brackets the speed-up over the naive fp32")
        print("eager LibTorch baseline measured in the same run. Goal: G at 256², batch 1, <= 0.75 ms.")
        print()
        for line in engine_table(graphs, eager):
            print(line)
        print()

    train = read_csv(os.path.join(a.out, "train-bench.csv"))
    if train:
        fp32 = next((float(r["median_s"]) for r in train if r["precision"] == "fp32"), None)
        print("Trainer (`starganv2-train-bench`, official 256², batch 8, w_hpf 1, synthetic data): s per")
        print("iteration; bf16 against fp32 of the same run. Reference: the official PyTorch code, 0.56 s/iter")
        print("on an H200 (issue 4); goal <= 0.25.")
        print()
        print("| precision | median s/iter | min | max | vs fp32 |")
        print("|---|---|---|---|---|")
        for r in train:
            ratio = f"{fp32 / float(r['median_s']):.2f}x" if fp32 and float(r["median_s"]) > 0 else "-"
            print(f"| {r['precision']} | {float(r['median_s']):.4f} | {float(r['min_s']):.4f} | "
                  f"{float(r['max_s']):.4f} | {ratio} |")
        print()

    steps = read_csv(os.path.join(a.out, "steps.csv"))
    if steps:
        print("| step | s | exit |")
        print("|---|---|---|")
        for s in steps:
            print(f"| {s['step']} | {s['seconds']} | {s['status']} |")
        if a.total:
            print(f"| total | {a.total} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
