"""`gantune train MODEL`: resolve the config from defaults, preset, file and flags, then train."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from trainables.config import GanConfig, build_config, parse_set, read_config_file
from trainables.errors import ConfigError
from trainables.registry import get_model, model_names, preset_overrides
from trainables.vocabulary import BCE, WGAN


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=f"one of: {', '.join(model_names())}")
    p.add_argument("--data", help="sprites (default), digits, stacked_digits, ring8, grid25 or folder:PATH")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (seed names, any case), e.g. --set LEARNING_RATE_G=2e-4")
    p.add_argument("--config", help="a config.json or a seed-style config.py of UPPER_CASE constants")
    p.add_argument("--epochs", type=int, help="NUM_EPOCHS")
    p.add_argument("--seed", type=int, help="SEED")
    p.add_argument("--out", help="run directory (default runs/MODEL-TIMESTAMP)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--preset", help="seed, cpu, ... (comma-separated to combine); default: seed on CUDA, "
                                    "cpu without")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and parameter counts")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def run(args: argparse.Namespace) -> int:
    """Train one of gantune's GANs and write losses.csv, sample grids and checkpoints."""
    from trainables.device import resolve_device

    device = resolve_device(args.device)
    spec = get_model(args.model)
    user = _user_overrides(args)
    resume_state = None
    if args.resume:
        from trainables.run import load_checkpoint, resumed_config

        if args.preset:
            raise ConfigError("--preset cannot be combined with --resume: the checkpoint's config is the base")
        resume_state = load_checkpoint(args.resume)
        cfg, preset = resumed_config(resume_state, user), "checkpoint"
        if cfg.model != spec.name:
            raise ConfigError(f"checkpoint {args.resume} is a {cfg.model} run, not {spec.name}")
    else:
        preset = args.preset or ("seed" if device.type == "cuda" else "cpu")
        cfg = build_config(spec.defaults_for(user.get("data")), preset_overrides(spec, preset), user)
    if args.dry_run:
        return _dry_run(cfg, preset)
    return _train(cfg, args, device, preset, resume_state)


def _user_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.config:
        overrides.update(read_config_file(args.config))
    overrides.update(parse_set(args.set))
    flags = {"data": args.data, "num_epochs": args.epochs, "seed": args.seed}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    overrides.pop("model", None)  # the command names the model
    return overrides


def _dry_run(cfg: GanConfig, preset: str) -> int:
    from trainables.data import load_dataset
    from trainables.nets.layers import parameter_count

    spec = get_model(cfg.model)
    if spec.conditional:  # the networks embed the dataset's classes
        data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
        cfg = spec.prepare(cfg, data.num_modes)
    print(f"preset: {preset}")
    print(json.dumps(cfg.to_dict(), indent=2))
    for name, net in spec.build_parts(cfg).items():
        print(f"{name} parameters: {parameter_count(net):,}")
    return 0


def _out_dir(args: argparse.Namespace, cfg: GanConfig) -> Path:
    if args.out:
        out = Path(args.out)
    elif args.resume:
        out = Path(args.resume).resolve().parent.parent  # DIR/checkpoints/checkpoint_epoch_XXXX.pt
    else:
        out = Path("runs") / f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    if not args.resume and (out / "losses.csv").exists():
        raise ConfigError(f"{out} already holds a run (losses.csv); choose another --out or --resume it")
    return out


def _train(cfg: GanConfig, args: argparse.Namespace, device: Any, preset: str, resume: dict | None) -> int:
    from trainables.run import make_trainer, train_from

    out = _out_dir(args, cfg)
    trainer = make_trainer(cfg, device)  # checks the data: a refused set leaves no run directory behind
    start = f", resuming after epoch {int(resume['epoch']) - 1}" if resume else ""
    print(f"gantune train {cfg.model}: preset {preset}, data {cfg.data}, device {device.type}, "
          f"{cfg.num_epochs} epochs{start} -> {out}")
    started = time.perf_counter()
    trainer = train_from(trainer, out, resume, None if args.quiet else _progress(cfg))
    print(f"done: {trainer.epoch} epochs in {time.perf_counter() - started:.1f}s ({trainer.place.describe()}); "
          f"losses {out / 'losses.csv'}")
    return 0


# the middle of each family's progress line: WGAN's W estimate; BCE's D(real), D(fake) and accuracies
_BALANCE = {
    WGAN: lambda row: f"W {row['w_dist']:8.4f}",
    BCE: lambda row: (f"D(real) {row['d_real']:.3f}  D(fake) {row['d_fake']:.3f}  d_acc {row['d_acc']:.2f}  "
                        f"g_acc {row['g_acc']:.2f}"),
}


def _progress(cfg: GanConfig):
    from tuner.core.diagnosis import epoch_warning

    family = get_model(cfg.model).family

    def report(row: dict[str, float]) -> None:
        print(f"epoch {int(row['epoch']):>4}/{cfg.num_epochs}  d_loss {row['d_loss']:9.4f}  "
              f"g_loss {row['g_loss']:9.4f}  {_BALANCE[family](row)}  "
              f"collapse {int(row['collapse_score']):>2}/14  diversity {row['diversity_ratio']:.2f}  "
              f"{row['epoch_time_s']:.1f}s", flush=True)
        warning = epoch_warning(row, family)
        if warning:
            print(f"  WARNING: {warning}", flush=True)

    return report
