"""Training throughput: images per second and achieved FLOP/s against this machine's measured matmul peak.

    python bench/train_throughput.py [--models wgan_small,wgan_large] [--presets cpu] [--epochs 3] [--batches 64,128]
        [--set CHANNELS_LAST=on]
    python bench/train_throughput.py --processes --data folder:DIR [--rounds 2]

`--processes` times whole commands as a user runs them: `gantune train` against the plain seed-style loop of
bench/reference_loop.py over the same networks and data (wgan_large at the seed's 64x64 with 16 feature maps,
batch 32, N_CRITIC 5), each with and without the allocator set-up (tuner/allocator.py), in interleaved
rounds. An epoch is timed from outside, from one `epoch` line to the next (the first epoch is warm-up), in
wall-clock seconds and in the process's CPU seconds (user + system, all threads, from /proc): on a machine other
processes share, the CPU seconds are the steadier measure of the work an epoch takes. gantune's epoch counts its
extras at their default rates: it runs with a quality evaluation every epoch so that a steady-state evaluation
(losses.csv's quality_time_s of epoch 1) can be timed, and counts it for 1 in QUALITY_EVERY epochs; its last
epoch's surplus over epoch 1 (the checkpoint) counts for 1 in the seed config's CHECKPOINT_EVERY; the sample
statistics and grid of every epoch count in full. The first evaluation's extra time (building the quality
reference, importing the metrics' packages: once per run) is shown apart, as "quality set-up s". The extras'
share is that epoch less the time losses.csv gives its steps (which include the sample statistics), over it.
User and system time and peak RSS are the whole command's (os.wait4).

FLOPs are counted by torch.utils.flop_counter over one critic step and one generator step (forward, backward
and the gradient penalty's double backward), then scaled by the steps an epoch takes. On CUDA the matmul
peak is a bf16 product (the precision the trainer's autocast uses), on the CPU a float32 one; it is the best of
several short windows, and a model's figure is its fastest timed epoch (the median epoch beside it), so other
processes on a shared machine lower neither the yardstick nor the figure more than the other. On the CPU the
table also gives both per CPU second of this process (all threads), which other processes disturb less.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.config import build_config, parse_set  # noqa: E402
from trainables.data import load_dataset  # noqa: E402
from trainables.device import placement, resolve_device  # noqa: E402
from trainables.registry import get_model, preset_overrides  # noqa: E402
from trainables.trainer import Trainer  # noqa: E402
from tuner import allocator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("GEN_FEATURE_MAPS=16", "DISC_FEATURE_MAPS=16", "BATCH_SIZE=32", "N_CRITIC=5")  # the issue's seed shapes
QUALITY_EVERY = 5  # the config's default: gantune's last epoch's quality evaluation counts for 1 in 5 epochs
CHECKPOINT_EVERY = 50  # wgan_large's seed config: the last epoch's checkpoint counts for 1 in 50


def matmul_peak(device: torch.device, windows: int = 8) -> tuple[float, float]:
    """FLOP/s of a large square matmul: the yardstick the training figures are a fraction of. Per wall-clock second
    the best of several short windows (the machine's peak even when other processes share its cores), and per
    CPU second of this process over all windows."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    best, reps, cpu_start = 0.0, 3, time.process_time()
    for _ in range(windows):
        _sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best, 2 * n**3 * reps * windows / (time.process_time() - cpu_start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _FlopCount:
    """Counts FLOPs with PyTorch's own per-operator formulas (torch.utils.flop_counter.flop_registry).

    FlopCounterMode itself cannot be used: its module hooks break autograd.grad, which the penalty needs.
    """

    def __enter__(self) -> _FlopCount:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                formula = flop_registry.get(func._overloadpacket)
                if formula is not None:
                    counter.total += formula(*args, **(kwargs or {}), out_val=out)
                return out

        self.total, self._mode = 0, Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)


def step_flops(trainer: Trainer) -> tuple[int, int]:
    """FLOPs of one critic step and of one generator step."""
    real = trainer._real_batch(trainer._batches()[0])
    with _FlopCount() as critic:
        trainer._critic_step(real, None)
    with _FlopCount() as gen:
        trainer._generator_step(real.shape[0])
    return critic.total, gen.total


def measure(model: str, preset: str, device: torch.device, epochs: int, batch: int | None,
            sets: dict[str, Any]) -> dict[str, Any]:
    """Images/s and FLOP/s of each timed epoch (after a warm-up epoch)."""
    spec = get_model(model)
    sets = {**sets, "batch_size": batch} if batch else sets
    cfg = build_config(spec.defaults, preset_overrides(spec, preset), sets)
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    trainer = Trainer(cfg, data, placement(cfg, device, True))
    critic_flops, gen_flops = step_flops(trainer)
    trainer.train_epoch()  # warm-up: cudnn autotuning, allocator
    images, flops, total, cpu_start = [], [], 0, time.process_time()
    for _ in range(epochs):
        _sync(device)
        critic0, gen0, start = trainer.critic_steps, trainer.generator_steps, time.perf_counter()
        trainer.train_epoch()
        _sync(device)
        elapsed = time.perf_counter() - start
        critic_steps, gen_steps = trainer.critic_steps - critic0, trainer.generator_steps - gen0
        images.append(critic_steps * cfg.batch_size / elapsed)
        flops.append((critic_steps * critic_flops + gen_steps * gen_flops) / elapsed)
        total += critic_steps * critic_flops + gen_steps * gen_flops
    return {"images_per_s": images, "flops_per_s": flops, "flops_per_cpu_s": total / (time.process_time() - cpu_start),
            "image_size": cfg.image_size, "batch": cfg.batch_size, "amp": trainer.place.describe()}


@dataclass(frozen=True)
class ProcessRun:
    epochs: tuple[float, ...]  # seconds from one `epoch` line to the next: epochs 1.. of the run
    cpu_epochs: tuple[float, ...]  # the process's CPU seconds (user + system, all threads) over the same spans
    user_s: float  # the whole command's user CPU time
    sys_s: float  # the whole command's system CPU time
    peak_rss_mb: float  # the whole command's peak resident set
    steps_s: float = 0.0  # gantune: losses.csv's epoch_time_s of epoch 1 (steps and sample statistics)
    quality_s: float = 0.0  # gantune: losses.csv's quality_time_s of epoch 1 (a steady-state evaluation)
    setup_s: float = 0.0  # gantune: the first evaluation's time beyond a steady one (the reference, the imports)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_process(argv: list[str], env: dict[str, str]) -> ProcessRun:
    wall: list[float] = []
    cpu: list[float] = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    for line in proc.stdout:
        if line.lstrip().startswith("epoch"):
            wall.append(time.perf_counter())
            cpu.append(_cpu_seconds(proc.pid))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"exit {proc.returncode}: {' '.join(argv)}")
    return ProcessRun(_spans(wall), _spans(cpu), usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024)


def _spans(stamps: list[float]) -> tuple[float, ...]:
    return tuple(b - a for a, b in zip(stamps, stamps[1:]))


def _env(keep: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (allocator.VARIABLE, allocator.SWITCH)}
    return {**env, allocator.VARIABLE: allocator.KEEP} if keep else env


def run_gantune(data: str, keep: bool) -> ProcessRun:
    sets = [a for item in SHAPES for a in ("--set", item)]
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "tuner.cli", "train", "wgan_large", "--preset", "seed", *sets, "--data", data,
                "--epochs", "3", "--set", "QUALITY_EVERY=1", "--out", out]
        run = run_process(argv, {**_env(keep), **({} if keep else {allocator.SWITCH: "system"})})
        with open(Path(out) / "losses.csv") as f:
            rows = list(csv.DictReader(f))
    first, steady = (float(rows[i]["quality_time_s"]) for i in (0, 1))
    return dataclasses.replace(run, steps_s=float(rows[1]["epoch_time_s"]), quality_s=steady, setup_s=first - steady)


def run_reference(data: str, keep: bool) -> ProcessRun:
    sets = [a for item in SHAPES for a in ("--set", item)]
    argv = [sys.executable, str(ROOT / "bench" / "reference_loop.py"), "--model", "wgan_large", "--preset", "seed",
            *sets, "--data", data, "--epochs", "2"]
    return run_process(argv, _env(keep))


def epoch_s(name: str, run: ProcessRun, cpu: bool = False) -> float:
    """The epoch as a user sees it, in wall-clock seconds or the process's CPU seconds; gantune's with its quality
    evaluation and checkpoint at their default rates (the quality's CPU time taken in the same proportion to its
    wall time as the whole epoch's)."""
    epochs = run.cpu_epochs if cpu else run.epochs
    if name == "reference":
        return epochs[0]
    normal, last = epochs
    quality = run.quality_s * (epochs[0] / run.epochs[0])
    return normal - quality + quality / QUALITY_EVERY + (last - normal) / CHECKPOINT_EVERY


def compare_processes(data: str, rounds: int) -> None:
    variants = [("reference", False), ("gantune", False), ("reference", True), ("gantune", True)]
    runs: dict[tuple[str, bool], list[ProcessRun]] = {v: [] for v in variants}
    for r in range(rounds):
        for name, keep in variants if r % 2 == 0 else variants[::-1]:  # A B C D, D C B A, ...
            run = (run_gantune if name == "gantune" else run_reference)(data, keep)
            runs[(name, keep)].append(run)
            print(f"{name} {'keep' if keep else 'system'}: {run}; load {os.getloadavg()[0]:.1f}", file=sys.stderr,
                  flush=True)
    print(f"data {data}; {os.cpu_count()} cores; torch {torch.__version__}; load {os.getloadavg()[0]:.1f}")
    print("| run | allocator | s per epoch | CPU s per epoch | vs reference (system), CPU s | user s | sys s | "
          "peak RSS MB | extras share | quality set-up s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = statistics.median(epoch_s("reference", run, cpu=True) for run in runs[("reference", False)])
    for (name, keep), done in runs.items():
        epochs, cpus = [epoch_s(name, run) for run in done], [epoch_s(name, run, cpu=True) for run in done]
        extras = [(e - run.steps_s) / e for e, run in zip(epochs, done)] if name == "gantune" else []
        print(f"| {name} | {'keep' if keep else 'system'} | {_span(epochs, '.1f')} | {_span(cpus, '.1f')} | "
              f"{_span([c / base for c in cpus], '.2f')}x | {_span([r.user_s for r in done], '.0f')} | "
              f"{_span([r.sys_s for r in done], '.1f')} | {_span([r.peak_rss_mb for r in done], '.0f')} | "
              f"{_span(extras, '.0%') if extras else '-'} | "
              f"{_span([r.setup_s for r in done], '.1f') if extras else '-'} |")
    for cpu in (False, True):
        pairs = zip(runs[("gantune", True)], runs[("reference", False)])  # the same round: the nearest load
        ratios = ", ".join(f"{epoch_s('gantune', g, cpu) / epoch_s('reference', r, cpu):.2f}x" for g, r in pairs)
        print(f"gantune (keep) against the reference (system), {'CPU' if cpu else 'wall-clock'} s, round by round: "
              f"{ratios}")


def _span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{lo:{fmt}}-{hi:{fmt}}"


def _batches(text: str) -> list[int | None]:
    return [int(b) for b in text.split(",") if b] or [None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="wgan_small,wgan_large")
    parser.add_argument("--presets", default=None, help="default: cpu on the CPU, cpu and seed on CUDA")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after a warm-up one")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", default="", help="comma-separated BATCH_SIZE values (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--processes", action="store_true", help="gantune train against the reference loop")
    parser.add_argument("--data", default="sprites", help="--processes: the data (the issue's: 320 64x64 images)")
    parser.add_argument("--rounds", type=int, default=2, help="--processes: interleaved rounds of the 4 runs")
    args = parser.parse_args()
    if args.processes:
        compare_processes(args.data, args.rounds)
        return
    allocator.restart_with_setup()  # the in-process figures under the conditions gantune trains in
    device = resolve_device(args.device)
    presets = args.presets or ("cpu,seed" if device.type == "cuda" else "cpu")
    peak, cpu_peak = matmul_peak(device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU x{torch.get_num_threads()} threads"
    print(f"device: {name}; matmul peak {peak / 1e12:.3f} TFLOP/s ({cpu_peak / 1e12:.3f} per CPU second); "
          f"torch {torch.__version__}; load {os.getloadavg()[0]:.1f}")
    print("| model | preset | size | batch | images/s | TFLOP/s | of peak | of peak, median epoch | of peak, CPU s | "
          "precision |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for preset, batch in ((p, b) for p in presets.split(",") for b in _batches(args.batches)):
            r = measure(model, preset, device, args.epochs, batch, parse_set(args.set))
            best, cpu = max(r["flops_per_s"]), r["flops_per_cpu_s"] / cpu_peak if device.type == "cpu" else None
            print(f"| {model} | {preset} | {r['image_size']} | {r['batch']} | {max(r['images_per_s']):.1f} | "
                  f"{best / 1e12:.3f} | {best / peak:.1%} | {statistics.median(r['flops_per_s']) / peak:.1%} | "
                  f"{'-' if cpu is None else format(cpu, '.1%')} | {r['amp']} |", flush=True)
    print(f"matmul peak again: {matmul_peak(device)[0] / 1e12:.3f} TFLOP/s; load {os.getloadavg()[0]:.1f}")

if __name__ == "__main__":
    main()
