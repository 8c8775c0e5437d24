"""Cost of one quality evaluation inside a trial, as a fraction of an epoch at the cpu preset.

    python bench/quality_cost.py [--models wgan_small,wgan_large,toy2d] [--threads 2] [--parts]

For each model: the mean epoch time over a few epochs, then the mean time of `Trainer.quality()` (samples,
features, KID, PRDC, modes, copies) after the one-off reference build (which may train the classifier), and
the ratio per evaluation and amortised over QUALITY_EVERY epochs. The first evaluation in a process is timed
apart: it imports torchmetrics, prdc and scikit-learn, once per trial, like the reference build.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables import quality as q  # noqa: E402
from trainables.config import build_config  # noqa: E402
from trainables.data import load_dataset  # noqa: E402
from trainables.device import placement  # noqa: E402
from trainables.registry import get_model, preset_overrides  # noqa: E402
from trainables.trainer import Trainer  # noqa: E402


def _timed(fn, repeats: int):
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return out, (time.perf_counter() - start) / repeats


def parts(trainer: Trainer, repeats: int) -> dict[str, float]:
    """Seconds per evaluation of each step of `quality()`, image models only."""
    ref, cfg = trainer.quality_reference, trainer.cfg
    samples, generate_s = _timed(lambda: q.generate(trainer.sampler, cfg.latent_dim, ref.default_samples), repeats)
    raw, embed_s = _timed(lambda: q._embed(ref.embed, samples), repeats)
    features = (raw - ref.mean) / ref.scale
    return {"generate": generate_s, "embed": embed_s,
            "kid": _timed(lambda: q._kid(ref.real_features, features, 0), repeats)[1],
            "prdc": _timed(lambda: q._prdc(ref.real_features, features), repeats)[1],
            "classes": _timed(lambda: q._class_modes(samples, ref), repeats)[1],
            "copies": _timed(lambda: q._copies(samples, ref), repeats)[1]}


def measure(model: str, epochs: int, repeats: int, with_parts: bool = False) -> dict[str, float]:
    spec = get_model(model)
    cfg = build_config(spec.defaults, preset_overrides(spec, "cpu"), {"quality_every": 0})
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    trainer = Trainer(cfg, data, placement(cfg, torch.device("cpu"), data.kind == "image"))
    epoch_s = sum(trainer.train_epoch()["epoch_time_s"] for _ in range(epochs)) / epochs
    start = time.perf_counter()
    ref = trainer.quality_reference
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    trainer.quality()  # the first one also imports torchmetrics, prdc and scikit-learn: once per process
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        trainer.quality()
    quality_s = (time.perf_counter() - start) / repeats
    every = build_config(spec.defaults, preset_overrides(spec, "cpu")).quality_every
    split = parts(trainer, repeats) if with_parts and data.kind == "image" else {}
    return {"parts": split, "epoch_s": epoch_s, "quality_s": quality_s, "build_s": build_s, "first_s": first_s,
            "every": every, "samples": ref.default_samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="wgan_small,wgan_large,toy2d")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--parts", action="store_true", help="also time each step of an evaluation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu preset, {args.threads} threads")
    print("model       | samples | epoch s | quality s | per evaluation | every | amortised | reference build s "
          "| first evaluation s")
    for model in args.models.split(","):
        r = measure(model, args.epochs, args.repeats, args.parts)
        ratio = r["quality_s"] / r["epoch_s"]
        print(f"{model:<11} | {r['samples']:>7} | {r['epoch_s']:7.2f} | {r['quality_s']:9.2f} | {ratio:14.1%} | "
              f"{r['every']:>5} | {ratio / r['every']:9.1%} | {r['build_s']:17.1f} | {r['first_s']:.1f}", flush=True)
        if r["parts"]:
            print("  steps, s per evaluation: " + ", ".join(f"{k} {v:.3f}" for k, v in r["parts"].items()))


if __name__ == "__main__":
    main()
