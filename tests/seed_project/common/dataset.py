"""The project's shared data loading, imported by every model's train.py (the seed layout's `common/`)."""

import csv
import os

import torch


def load_points(data_dir):
    """The 2-D points of DATA_DIR/ring.csv as a (N, 2) float tensor."""
    with open(os.path.join(data_dir, "ring.csv"), newline="") as f:
        rows = [(float(x), float(y)) for x, y in csv.reader(f)]
    return torch.tensor(rows)
