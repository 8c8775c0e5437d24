"""Training throughput: images per second and achieved FLOP/s against this machine's measured matmul peak.

    python bench/train_throughput.py [--models wgan_small,wgan_large] [--presets cpu] [--epochs 2] [--device auto]

FLOPs are counted by torch.utils.flop_counter over one critic step and one generator step (forward, backward
and the gradient penalty's double backward), then scaled by the steps an epoch takes. On CUDA the matmul
peak is a bf16 product (the precision the trainer's autocast uses), on the CPU a float32 one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.config import build_config  # noqa: E402
from trainables.data import load_dataset  # noqa: E402
from trainables.device import placement, resolve_device  # noqa: E402
from trainables.registry import get_model, preset_overrides  # noqa: E402
from trainables.trainer import Trainer  # noqa: E402


def matmul_peak(device: torch.device) -> float:
    """FLOP/s of a large square matmul: the yardstick the training figures are a fraction of."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    _sync(device)
    reps, start = 10, time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


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
        trainer._critic_step(real)
    with _FlopCount() as gen:
        trainer._generator_step(real.shape[0])
    return critic.total, gen.total


def measure(model: str, preset: str, device: torch.device, epochs: int, batch: int | None) -> dict[str, float]:
    spec = get_model(model)
    cfg = build_config(spec.defaults, preset_overrides(spec, preset), {"batch_size": batch} if batch else {})
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    trainer = Trainer(cfg, data, placement(cfg, device, True))
    critic_flops, gen_flops = step_flops(trainer)
    trainer.train_epoch()  # warm-up: cudnn autotuning, allocator
    _sync(device)
    critic0, gen0, start = trainer.critic_steps, trainer.generator_steps, time.perf_counter()
    for _ in range(epochs):
        trainer.train_epoch()
    _sync(device)
    elapsed = time.perf_counter() - start
    critic_steps, gen_steps = trainer.critic_steps - critic0, trainer.generator_steps - gen0
    flops = critic_steps * critic_flops + gen_steps * gen_flops
    return {"images_per_s": critic_steps * cfg.batch_size / elapsed, "flops_per_s": flops / elapsed,
            "image_size": cfg.image_size, "batch": cfg.batch_size, "amp": trainer.place.describe()}


def _batches(text: str) -> list[int | None]:
    return [int(b) for b in text.split(",") if b] or [None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="wgan_small,wgan_large")
    parser.add_argument("--presets", default=None, help="default: cpu on the CPU, cpu and seed on CUDA")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", default="", help="comma-separated BATCH_SIZE values (default: the preset's)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    presets = args.presets or ("cpu,seed" if device.type == "cuda" else "cpu")
    peak = matmul_peak(device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU x{torch.get_num_threads()} threads"
    print(f"device: {name}; matmul peak {peak / 1e12:.3f} TFLOP/s; torch {torch.__version__}")
    print(f"{'model':<11} {'preset':<7} {'size':>4} {'batch':>5} {'images/s':>10} {'TFLOP/s':>8} "
          f"{'of peak':>8}  precision")
    for model in args.models.split(","):
        for preset, batch in ((p, b) for p in presets.split(",") for b in _batches(args.batches)):
            r = measure(model, preset, device, args.epochs, batch)
            print(f"{model:<11} {preset:<7} {r['image_size']:>4} {r['batch']:>5} {r['images_per_s']:>10.1f} "
                  f"{r['flops_per_s'] / 1e12:>8.3f} {r['flops_per_s'] / peak:>8.1%}  {r['amp']}")


if __name__ == "__main__":
    main()
