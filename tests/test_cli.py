"""`gantune train` as a user runs it: real commands in temporary folders; bad input gets one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

TINY = ["--set", "IMAGE_SIZE=16", "--set", "GEN_FEATURE_MAPS=8", "--set", "DISC_FEATURE_MAPS=8",
        "--set", "DATASET_SIZE=64", "--set", "BATCH_SIZE=32", "--set", "NUM_SAMPLES=32", "--set", "QUALITY_EVERY=0",
        "--device", "cpu"]


def gantune(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two test workers share two cores
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_train_then_resume_with_a_new_learning_rate(tmp_path):
    out = tmp_path / "run"
    first = gantune("train", "wgan_small", *TINY, "--epochs", "2", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "preset cpu" in first.stdout and "epoch    1/2" in first.stdout
    ckpt = out / "checkpoints" / "checkpoint_epoch_0001.pt"
    again = gantune("train", "wgan_small", "--resume", str(ckpt), "--epochs", "3", "--set", "LEARNING_RATE_D=5e-5",
                    "--device", "cpu", "--quiet")
    assert again.returncode == 0, again.stderr
    assert "epoch    2/3" not in again.stdout  # --quiet: no per-epoch lines
    losses = pd.read_csv(out / "losses.csv")
    assert losses["epoch"].tolist() == [0, 1, 2]
    assert losses["lr_d"].tolist() == [1e-4, 1e-4, 5e-5]
    assert json.loads((out / "config.json").read_text())["LEARNING_RATE_D"] == 5e-5


def test_dry_run_prints_config_and_parameter_counts_without_training(tmp_path):
    result = gantune("train", "wgan_large", "--preset", "seed", "--dry-run", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "generator parameters: 8,559,961" in result.stdout
    assert "critic parameters: 21,231,481" in result.stdout
    assert '"LEARNING_RATE_G": 0.0001' in result.stdout
    assert not (tmp_path / "runs").exists()


def test_toy2d_on_grid25_starts_from_the_found_config_with_its_epochs():
    result = gantune("train", "toy2d", "--data", "grid25", "--dry-run", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert '"NUM_EPOCHS": 900' in result.stdout and '"BATCH_SIZE": 256' in result.stdout
    assert '"LEARNING_RATE_D": 0.0026858706191286792' in result.stdout


def test_a_config_py_in_the_seed_style_is_accepted(tmp_path):
    (tmp_path / "config.py").write_text("LEARNING_RATE_G = 1e-5\nN_CRITIC = 5\nBATCH_SIZE = 32\n")
    result = gantune("train", "wgan_large", "--config", str(tmp_path / "config.py"), "--dry-run", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert '"LEARNING_RATE_G": 1e-05' in result.stdout and '"BATCH_SIZE": 32' in result.stdout


@pytest.mark.parametrize("args, words", [
    (["train", "wgan_huge"], ["wgan_huge", "wgan_large"]),
    (["train", "wgan_small", "--set", "LAMBDA=3"], ["LAMBDA", "LAMBDA_GP"]),
    (["train", "wgan_small", "--set", "N_CRITIC=-1"], ["N_CRITIC", "-1"]),
    (["train", "wgan_small", "--set", "IMAGE_SIZE=100"], ["IMAGE_SIZE", "100"]),
    (["train", "wgan_small", "--preset", "turbo"], ["turbo", "seed"]),
    (["train", "wgan_small", "--config", "nope.json"], ["nope.json"]),
    (["train", "wgan_small", "--wrong-flag"], ["--wrong-flag"]),
    (["train", "wgan_small", "--epochs", "many"], ["many"]),
    (["train", "wgan_small", "--data", "imagenet", "--epochs", "1"], ["imagenet", "sprites"]),
    (["train", "wgan_small", "--data", "folder:does/not/exist", "--epochs", "1"], ["does/not/exist"]),
    (["train", "wgan_small", "--resume", "missing.pt"], ["missing.pt"]),
    (["train", "wgan_small", "--data", "ring8", "--epochs", "1"], ["wgan_small", "ring8", "points"]),
    (["train", "toy2d", "--data", "sprites", "--epochs", "1"], ["toy2d", "sprites", "image"]),
])
def test_bad_input_gets_one_clear_line_and_exit_2(args, words):
    assert_one_line_error(gantune(*args), *words)


def write_images(folder: Path, names: list[str]) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), (200, 30, 30)).save(folder / name)


@pytest.mark.parametrize(("model", "images", "words"), [
    ("wgan_small", [], ["no images", "data"]),
    ("wgan_small", ["one.png"], ["1 image;", "at least 10"]),
    ("wgan_small", [f"{i}.png" for i in range(9)], ["9 images;", "at least 10"]),
    ("wgan_small", ["sprite.png", "broken.png"], ["cannot read image", "broken.png"]),
    ("cgan", [f"{i}.png" for i in range(12)], ["cgan is conditional", "no classes"]),
    ("cgan", [f"red/{i}.png" for i in range(12)], ["at least 2 classes", "has 1"]),
])
def test_an_unusable_image_folder_is_refused_before_a_run_directory_is_made(tmp_path, model, images, words):
    (tmp_path / "data").mkdir()
    write_images(tmp_path / "data", images)
    if "broken.png" in images:
        (tmp_path / "data" / "broken.png").write_bytes(b"not a png at all")
    command = ("train", model, "--data", "folder:data", *TINY, "--out", "runs/mine")
    for _ in range(2):  # the same command again: nothing half-written blocks it ("already holds a run")
        assert_one_line_error(gantune(*command), *words)
        assert not (tmp_path / "runs").exists()


def test_corrupt_checkpoint_and_existing_run_are_refused_and_nothing_is_lost(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    assert_one_line_error(gantune("train", "wgan_small", "--resume", str(tmp_path / "junk.pt")), "junk.pt")
    out = tmp_path / "run"
    out.mkdir()
    (out / "losses.csv").write_text("epoch,d_loss,g_loss\n0,1,2\n")
    assert_one_line_error(gantune("train", "wgan_small", *TINY, "--out", str(out)), "already holds a run")
    assert (out / "losses.csv").read_text() == "epoch,d_loss,g_loss\n0,1,2\n"


def test_resume_cannot_change_the_architecture(tmp_path):
    out = tmp_path / "run"
    assert gantune("train", "wgan_small", *TINY, "--epochs", "1", "--out", str(out), "--quiet").returncode == 0
    result = gantune("train", "wgan_small", "--resume", str(out / "checkpoints" / "checkpoint_epoch_0000.pt"),
                     "--set", "LATENT_DIM=64")
    assert_one_line_error(result, "LATENT_DIM")


def test_cuda_on_a_machine_without_one_is_refused_clearly():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot happen here")
    assert_one_line_error(gantune("train", "wgan_small", "--device", "cuda"), "cuda")


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    (tmp_path / "losses.csv").write_text("epoch,d_loss,g_loss\n" + "".join(f"{e},-7,21\n" for e in range(30)))
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "autofix", "--run", "losses.csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # like `| head -1`, before gantune writes anything
    assert proc.wait(timeout=120) == 0
    err = proc.stderr.read()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
