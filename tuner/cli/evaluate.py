"""`gantune evaluate RUN_DIR`: quality and mode coverage of a trained run's checkpoint."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

# label and format of each metric in the terminal table, in the order shown
_ROWS = (
    ("quality", "quality (0-1, higher is better)", "{:.4f}"),
    ("kid", "KID (lower is better)", "{:.4f}"),
    ("precision", "precision", "{:.3f}"), ("recall", "recall", "{:.3f}"),
    ("density", "density", "{:.3f}"), ("coverage", "coverage", "{:.3f}"),
    ("modes_hit", "modes hit", "{:.0f}"), ("mode_kl", "mode KL(generated || real)", "{:.4f}"),
    ("copy_frac", "copies of training images", "{:.1%}"),
    ("modes_captured", "modes captured", "{:.0f}"), ("high_quality_pct", "high-quality samples %", "{:.1f}"),
    ("reverse_kl", "reverse KL over modes", "{:.4f}"), ("mode_spread", "mode spread (1 = the data's)", "{:.2f}"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a gantune run directory (with checkpoints/)")
    p.add_argument("--checkpoint", help="a checkpoint file (default: the run's latest)")
    p.add_argument("--samples", type=int, help="generated samples (default: 2,500 for points, 1,000 or 10 per "
                                               "mode for images)")
    p.add_argument("--json", action="store_true", help="print one JSON object (keys documented in the README)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> int:
    """Measure a trained run's sample quality and mode coverage against its data."""
    from trainables.device import resolve_device
    from trainables.errors import ConfigError
    from trainables.run import evaluate

    if args.samples is not None and args.samples < 10:
        raise ConfigError(f"--samples must be at least 10, got {args.samples}")
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    result = evaluate(Path(args.run_dir), checkpoint, args.samples, resolve_device(args.device))
    if args.json:
        print(json.dumps({k: _plain(v) for k, v in result.items()}))
    else:
        _print_table(result)
    return 0


def _plain(value: Any) -> Any:
    """JSON has no NaN: a metric that could not be computed (non-finite samples) is null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _print_table(result: dict[str, Any]) -> None:
    print(f"{result['model']} on {result['data']}, {result['epochs_trained']} epochs trained, "
          f"{result['samples']} samples ({result['checkpoint']})")
    modes = f" of {result['num_modes']}" if "num_modes" in result else ""
    for key, label, fmt in _ROWS:
        if key in result:
            value = result[key]
            text = fmt.format(value) if math.isfinite(value) else "n/a"
            print(f"  {label:<34} {text}{modes if key in ('modes_hit', 'modes_captured') else ''}")
    if "classifier_accuracy" in result:
        print(f"  (mode classifier: {result['classifier_accuracy']:.1%} on held-out real images)")
    if result.get("copies_training"):
        print("  warning: the generator copies training images (nearest-neighbour check)")
