"""Cost of one quality evaluation inside a trial, as a fraction of an epoch at the cpu preset.

    python bench/quality_cost.py [--models wgan_small,wgan_large,toy2d] [--threads 2]

For each model: the mean epoch time over a few epochs, then the mean time of `Trainer.quality()` (samples,
features, KID, PRDC, modes, copies) after the one-off reference build (which may train the classifier), and
the ratio per evaluation and amortised over QUALITY_EVERY epochs.
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
from trainables.device import placement  # noqa: E402
from trainables.registry import get_model, preset_overrides  # noqa: E402
from trainables.trainer import Trainer  # noqa: E402


def measure(model: str, epochs: int, repeats: int) -> dict[str, float]:
    spec = get_model(model)
    cfg = build_config(spec.defaults, preset_overrides(spec, "cpu"), {"quality_every": 0})
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    trainer = Trainer(cfg, data, placement(cfg, torch.device("cpu"), data.kind == "image"))
    epoch_s = sum(trainer.train_epoch()["epoch_time_s"] for _ in range(epochs)) / epochs
    start = time.perf_counter()
    ref = trainer.quality_reference
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        trainer.quality()
    quality_s = (time.perf_counter() - start) / repeats
    every = build_config(spec.defaults, preset_overrides(spec, "cpu")).quality_every
    return {"epoch_s": epoch_s, "quality_s": quality_s, "build_s": build_s, "every": every,
            "samples": ref.default_samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="wgan_small,wgan_large,toy2d")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu preset, {args.threads} threads")
    print("model       | samples | epoch s | quality s | per evaluation | every | amortised | reference build s")
    for model in args.models.split(","):
        r = measure(model, args.epochs, args.repeats)
        ratio = r["quality_s"] / r["epoch_s"]
        print(f"{model:<11} | {r['samples']:>7} | {r['epoch_s']:7.2f} | {r['quality_s']:9.2f} | {ratio:14.1%} | "
              f"{r['every']:>5} | {ratio / r['every']:9.1%} | {r['build_s']:.1f}", flush=True)


if __name__ == "__main__":
    main()
