"""Training time of the 3D DenseNet-121 (``mri_densenet``) per epoch on the demo's shapes.

For each crop size (default 64^3, the demo preset's, and 48^3), on random 2-channel volumes
held in memory, one training step is what ``MRIDenseNetModel`` does per batch: the joint MONAI
augmentation of every sample (flips, rotation, zoom), the forward pass (bf16 autocast on CUDA,
fp32 on the CPU), the Cox loss, the backward pass and the Nesterov-SGD + OneCycle step. After
one warm-up step, ``--batches`` steps are timed (median), and an eval-mode forward pass of one
batch (median of two) for the validation loss. One epoch is then estimated as
``ceil(n_train / batch) x step + ceil(n_val / batch) x eval batch`` (demo: 140 training and 20
validation patients of 200); with ``--full-epoch`` the real ``MRIDenseNetModel.fit`` (one
epoch, crops written as ``crop.npz`` files) is timed as well, which also includes reading the
crops and the Breslow fit.

Usage: python benchmarks/densenet.py [--device auto] [--sizes 64 48] [--n-train 140]
       [--n-val 20] [--batch-size 8] [--batches 3] [--threads 2] [--full-epoch] [--no-doc]
Writes the table to docs/benchmarks.md (section "DenseNet-121 training"), replacing an older
one.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)

from mmsurv.models.mri_model import MRIDenseNetModel, _as_tensor, _augmenter
from mmsurv.models.mri_nets import DenseNetSurv
from mmsurv.models.torch_model import _autocast, _device, cox_loss

SECTION = "## DenseNet-121 training"
CHANNELS = 2
DEFAULT_EPOCHS = 40  # MRIDenseNetModel's and MRIClinicalMMNNModel's default

_log = logging.getLogger("benchmarks.densenet")


def machine_facts(device: torch.device) -> str:
    """One line: CPU model, cores, torch threads, torch version and the device."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    dev = str(device)
    if device.type == "cuda":
        dev = f"{dev} ({torch.cuda.get_device_name(device)})"
    return (
        f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {dev}"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    size: int, args: argparse.Namespace, device: torch.device
) -> tuple[float, float, float]:
    """Median seconds of a training step, of its augmentation alone, and of an eval batch."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = DenseNetSurv(CHANNELS).to(device)
    n_batches = math.ceil(args.n_train / args.batch_size)
    opt = torch.optim.SGD(net.parameters(), lr=5e-4, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=5e-4, total_steps=n_batches * (args.batches + 1), cycle_momentum=False
    )
    augment = _augmenter(0)
    images = torch.randn(args.batch_size, CHANNELS, size, size, size)
    time_d = rng.exponential(365.0, size=args.batch_size)
    event = np.ones(args.batch_size, dtype=int)

    def step() -> tuple[float, float]:
        start = time.perf_counter()
        batch = images.to(device)
        batch = torch.stack([_as_tensor(augment(x)) for x in batch])
        _sync(device)
        aug = time.perf_counter() - start
        net.train()
        with _autocast(device):
            risk = net(batch)
        loss = cox_loss(risk, event, time_d)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        _sync(device)
        return time.perf_counter() - start, aug

    def eval_batch() -> float:
        net.eval()
        start = time.perf_counter()
        with torch.inference_mode(), _autocast(device):
            net(images.to(device)).float().cpu()
        _sync(device)
        return time.perf_counter() - start

    step()  # warm-up (kernel selection, allocator)
    runs = []
    for i in range(args.batches):
        runs.append(step())
        print(f"  {size}^3 step {i + 1}: {runs[-1][0]:.2f} s (augmentation {runs[-1][1]:.2f} s)")
    evals = [eval_batch() for _ in range(2)]
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(evals),
    )


def time_full_epoch(size: int, args: argparse.Namespace, folder: Path) -> float:
    """Seconds of ``MRIDenseNetModel(epochs=1).fit`` on written crops (train + validation)."""
    rng = np.random.default_rng(1)
    n = args.n_train + args.n_val
    rows = []
    for i in range(n):
        path = folder / f"{size}_P{i}.npz"
        vol = rng.normal(size=(CHANNELS, size, size, size)).astype(np.float32)
        np.savez_compressed(path, t1ce=vol[0], t2=vol[1])
        rows.append({"pid": f"P{i}", "mri": str(path)})
    X = pd.DataFrame(rows).set_index("pid")
    t = rng.exponential(365.0, size=n)
    e = np.ones(n, dtype=int)
    tr, va = slice(0, args.n_train), slice(args.n_train, n)
    model = MRIDenseNetModel(
        epochs=1, batch_size=args.batch_size, threads=args.threads, device=args.device
    )
    start = time.perf_counter()
    model.fit(X.iloc[tr], t[tr], e[tr], validation=(X.iloc[va], t[va], e[va]))
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> tuple[list[str], str, dict[int, float]]:
    """Table rows, the machine line and crop size -> estimated seconds of one default fit."""
    torch.set_num_threads(args.threads)
    device = _device(args.device)
    dtype = "bfloat16" if device.type == "cuda" else "float32"
    n_batches = math.ceil(args.n_train / args.batch_size)
    n_eval = math.ceil(args.n_val / args.batch_size)
    rows, epochs = [], {}
    for size in args.sizes:
        step_s, aug_s, eval_s = time_steps(size, args, device)
        epoch_s = n_batches * step_s + n_eval * eval_s
        epochs[size] = DEFAULT_EPOCHS * epoch_s
        full = "-"
        if args.full_epoch:
            with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
                measured = time_full_epoch(size, args, Path(tmp))
            epochs[size] += measured - epoch_s  # per-fit overhead (reading, Breslow pass)
            full = f"{measured:.0f}"
        rows.append(
            f"| {device.type} | {size}^3 | {dtype} | {args.batch_size} | {step_s:.2f} "
            f"| {aug_s:.2f} | {eval_s:.2f} | {n_batches} + {n_eval} | {epoch_s:.0f} | {full} |"
        )
        print(rows[-1], flush=True)
    return rows, machine_facts(device), epochs


def write_doc(
    args: argparse.Namespace, rows: list[str], facts: str, fits: dict[int, float]
) -> None:
    """Write the section; ``fits``: crop size -> estimated seconds of one default fit."""
    per_fit = "; ".join(f"{size}^3: about {sec / 60:.0f} min" for size, sec in fits.items())
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS",) if k in os.environ)
    command = " ".join([*([env] if env else []), "python", "benchmarks/densenet.py", *sys.argv[1:]])
    table = "\n".join(
        [
            SECTION,
            "",
            f"`{command}` on {time.strftime('%Y-%m-%d')}: {facts}; load average "
            f"{args.load_start:.2f} at the start and {args.load_end:.2f} at the end (other jobs "
            "shared the machine when the load exceeds the thread count, which inflates the "
            "CPU times). MONAI 3D DenseNet-121, 2 input channels, 12 features + linear risk head "
            "(`mri_densenet`; the MMNN adds a clinical MLP that costs next to nothing). *Step*: "
            "one training batch as `MRIDenseNetModel` runs it (joint MONAI augmentation of each "
            "sample, forward, Cox loss, backward, Nesterov SGD + OneCycle step), median of "
            f"{args.batches} after a warm-up; *augmentation*: its augmentation part; *eval "
            "batch*: an eval-mode forward pass (validation loss). *Epoch (estimated)* = "
            f"batches x step + validation batches x eval batch, for {args.n_train} training and "
            f"{args.n_val} validation patients (the demo's 200 patients split 70/10/20), "
            "extrapolated from the timed batches, not measured over a whole epoch; *epoch "
            "(measured)*: `MRIDenseNetModel(epochs=1).fit` end to end, where run with "
            "`--full-epoch`: the crop files read, the epoch, the validation loss, and an "
            "eval pass over the training set for the Breslow baseline (once per fit, about "
            "training batches x eval batch on top of the estimate).",
            "",
            "| device | crop | dtype | batch | step (s) | augmentation (s) | eval batch (s) "
            "| batches (train + val) | epoch, estimated (s) | epoch, measured (s) |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"With the models' default {DEFAULT_EPOCHS} epochs (the paper ran 200), one fit "
            f"(per fold and endpoint) takes here {per_fit}; the MMNN adds an eval pass over the "
            "training set every `blend_every` epochs for gradient blending. The default "
            "experiments train three MRI networks on two endpoints, six fits per fold: the "
            "demo config therefore runs 10 epochs at 64^3 (the crop whose last DenseNet feature "
            "map, 2^3, still gives Grad-CAM some resolution); on a GPU run the paper's 200.",
            "",
            "CPU times on this shared machine depend heavily on what else runs: an earlier run "
            "of the same command at load average 3-6 measured 16-26 s per 64^3 step (7-10x the "
            "figure above), so compare rows only at a similar load.",
            "",
        ]
    )
    replace_section(SECTION, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 48])
    parser.add_argument("--n-train", type=int, default=140)
    parser.add_argument("--n-val", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=3, help="timed training steps per size")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--full-epoch", action="store_true", help="also time a real 1-epoch fit")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.load_start = os.getloadavg()[0]
    rows, facts, epochs = run(args)
    args.load_end = os.getloadavg()[0]
    if not args.no_doc:
        write_doc(args, rows, facts, epochs)


if __name__ == "__main__":
    main()
