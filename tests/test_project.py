"""The user's project as a trial sees it (tuner/project.py): the root, the folder the command runs in, the log's
place, and the mirror's copy / link / leave-out rules, on real folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainables.errors import ConfigError
from tuner.project import layout_for, mirror

CONFIG = {"DATA_DIR": "../../dataset", "OUTPUT_DIR": "../../outputs/gan", "SAMPLE_DIR": "../../outputs/gan/samples",
          "NAME": "gan", "LR": 1e-4}


def seed_tree(root: Path, git: bool = True) -> Path:
    for folder in ("models/gan", "models/other", "common", "dataset", "outputs/gan/checkpoints", "outputs/old"):
        (root / folder).mkdir(parents=True)
    if git:
        (root / ".git").mkdir()
    (root / "models/gan/config.py").write_text("LR = 1e-4\n")
    (root / "models/gan/train.py").write_text("print('train')\n")
    (root / "common/dataset.py").write_text("")
    (root / "dataset/big.bin").write_bytes(b"\0" * (2 << 20))
    (root / "outputs/gan/losses.csv").write_text("epoch,d_loss,g_loss\n")
    (root / "outputs/readme.txt").write_text("outputs")
    return root / "models/gan/config.py"


def test_a_seed_layout_mirrors_the_git_root_and_leaves_the_outputs_behind(tmp_path):
    config = seed_tree(tmp_path / "proj")
    layout = layout_for(config, CONFIG, tmp_path / "proj/outputs/gan/losses.csv")
    assert layout.root == (tmp_path / "proj").resolve()
    assert layout.workdir == Path("models/gan") and layout.log == Path("outputs/gan/losses.csv")
    assert Path("outputs/gan") in layout.outputs and Path("outputs/gan/samples") in layout.outputs
    trial = tmp_path / "trial"
    mirror(layout, trial, config.name)
    assert (trial / "models/gan/train.py").is_file() and not (trial / "models/gan/train.py").is_symlink()
    assert not (trial / "models/gan/config.py").exists()  # the trial writes its own
    assert all((trial / link).is_symlink() for link in ("common", "dataset", "models/other"))
    assert (trial / "outputs").is_dir() and not (trial / "outputs").is_symlink()
    assert (trial / "outputs/old").is_symlink() and (trial / "outputs/readme.txt").is_file()
    assert not (trial / "outputs/gan").exists() and not (trial / ".git").exists()


def test_the_log_is_found_by_log_or_by_the_runs_place_and_else_beside_the_config(tmp_path):
    config = seed_tree(tmp_path / "proj", git=False)
    assert layout_for(config, CONFIG, tmp_path / "proj/outputs/gan/losses.csv").root == config.parent.resolve()
    assert layout_for(config, {}, tmp_path / "elsewhere.csv").log == Path("losses.csv")
    layout = layout_for(config, CONFIG, None, project=str(tmp_path / "proj"))  # the seed layout's OUTPUT_DIR
    assert layout.log == Path("outputs/gan/losses.csv")
    layout = layout_for(config, CONFIG, tmp_path / "elsewhere.csv", log="logs/train.csv",
                        project=str(tmp_path / "proj"))
    assert layout.root == (tmp_path / "proj").resolve() and layout.log == Path("models/gan/logs/train.csv")


@pytest.mark.parametrize("kwargs, words", [
    ({"project": "nowhere"}, "--project nowhere"),
    ({"log": "../../../x.csv"}, "must name a file inside the project"),
])
def test_bad_project_or_log_is_one_clear_error(tmp_path, kwargs, words):
    config = seed_tree(tmp_path / "proj")
    with pytest.raises(ConfigError, match=words.replace("-", r"\-")):
        layout_for(config, CONFIG, None, **kwargs)
