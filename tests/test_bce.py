"""The BCE GANs of guides 003 and 004: networks, objective, trainer columns, adaptive LR_D, the diagnosis of
their logs, and the per-epoch warning. Real training on tiny data."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from trainables.config import build_config
from trainables.data import load_dataset
from trainables.device import placement
from trainables.errors import ConfigError
from trainables.losses import Bce
from trainables.registry import get_model, preset_overrides
from trainables.run import train
from trainables.schedules import adapt_lr_d
from trainables.trainer import Trainer
from trainables.vocabulary import BCE_METRICS, columns
from tuner.core.diagnosis import diagnose, epoch_warning
from tuner.core.logs import read_run


def _cfg(model: str, **extra):
    spec = get_model(model)
    return build_config(spec.defaults, preset_overrides(spec, "cpu"),
                        {"gen_feature_maps": 8, "disc_feature_maps": 8, "dataset_size": 128, "batch_size": 32,
                         "num_samples": 32, "quality_every": 0, "num_epochs": 2, **extra})


def test_dcgan_is_the_camel_gan_at_28_pixels():
    spec = get_model("dcgan")
    cfg = build_config(spec.defaults)
    assert (cfg.image_size, cfg.channels, cfg.latent_dim, cfg.optimizer) == (28, 1, 100, "rmsprop")
    assert (cfg.learning_rate_d, cfg.learning_rate_g, cfg.batch_size, cfg.d_dropout) == (8e-4, 4e-4, 64, 0.4)
    critic, gen = spec.build_critic(cfg), spec.build_generator(cfg)
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (64, (5, 5), (2, 2)), (64, (5, 5), (2, 2)), (128, (5, 5), (2, 2)), (128, (5, 5), (1, 1))]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    gen.eval()
    fake = gen(torch.randn(3, 100))
    assert fake.shape == (3, 1, 28, 28) and fake.abs().max() <= 1.0
    assert critic(fake).shape == (3, 1)


def test_cgan_networks_read_the_class():
    spec = get_model("cgan")
    cfg = build_config(spec.defaults, {"image_size": 32, "gen_feature_maps": 8, "disc_feature_maps": 8,
                                       "num_classes": 5})
    gen, critic = spec.build_generator(cfg).eval(), spec.build_critic(cfg)
    z = torch.randn(4, cfg.latent_dim)
    a, b = gen(z, torch.zeros(4, dtype=torch.long)), gen(z, torch.ones(4, dtype=torch.long))
    assert a.shape == (4, 3, 32, 32) and not torch.allclose(a, b)
    assert critic(a, torch.zeros(4, dtype=torch.long)).shape == (4, 1)


def test_bce_objective_smooths_labels_and_counts_accuracy():
    sure = lambda x: x.flatten(1).mean(1, keepdim=True) * 100  # noqa: E731  (a critic: big logit for x > 0)
    real, fake = torch.ones(8, 1, 4, 4), -torch.ones(8, 1, 4, 4)
    rng = torch.Generator().manual_seed(0)
    plain = Bce(0.0, 0.0, "mean").critic_terms(sure, real, fake, rng)
    smooth = Bce(0.1, 0.0, "sum").critic_terms(sure, real, fake, rng)
    assert plain["d_loss"].item() < 1e-6 and plain["d_acc_real"].item() == 1.0 == plain["d_acc_fake"].item()
    assert smooth["d_loss_real"].item() > 5  # a target of 0.9 punishes a logit of 100
    g = Bce().generator_terms(sure, fake, rng)
    assert g["g_acc"].item() == 0.0 and g["g_loss"].item() > 50


def test_dcgan_trains_and_logs_guide_003s_columns(tmp_path):
    cfg = _cfg("dcgan")
    train(cfg, tmp_path, torch.device("cpu"))
    frame = pd.read_csv(tmp_path / "losses.csv")
    assert tuple(frame.columns) == columns("bce")
    assert len(frame) == 2 and frame[list(BCE_METRICS)].notna().all().all()
    assert frame["d_acc"].between(0, 1).all() and frame["g_acc"].between(0, 1).all()
    assert (frame["d_acc"] - (frame["d_acc_real"] + frame["d_acc_fake"]) / 2).abs().max() < 1e-5
    log = read_run(tmp_path)
    assert log.family == "bce"


def test_cgan_trains_on_sprite_classes_with_the_adaptive_rate(tmp_path):
    cfg = _cfg("cgan", num_epochs=3)
    trainer = train(cfg, tmp_path, torch.device("cpu"))
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    assert trainer.cfg.num_classes == data.num_modes
    frame = pd.read_csv(tmp_path / "losses.csv")
    rates = frame["lr_d"].tolist()
    for before, after, (_, row) in zip(rates, rates[1:], frame.iterrows()):
        assert after == pytest.approx(adapt_lr_d(before, row["d_real"], row["d_fake"])[0], rel=1e-5)  # csv: 6 digits


def test_adaptive_rate_follows_guide_004():
    assert adapt_lr_d(1e-4, 0.95, 0.05)[0] == pytest.approx(0.95e-4)
    assert adapt_lr_d(1e-4, 0.6, 0.4)[0] == pytest.approx(1e-4 / 0.95)
    assert adapt_lr_d(1e-4, 0.8, 0.2)[0] == 1e-4
    assert adapt_lr_d(1.02e-5, 0.99, 0.0)[0] == 1e-5 and adapt_lr_d(2.9e-4, 0.5, 0.5)[0] == 3e-4


def test_conditional_model_refuses_unlabelled_data_and_wgan_refuses_odd_sizes(tmp_path):
    with pytest.raises(ConfigError, match="labelled"):
        folder = tmp_path / "imgs"
        folder.mkdir()
        from PIL import Image
        for i in range(4):
            Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(folder / f"{i}.png")
        cfg = _cfg("cgan", data=f"folder:{folder}", dataset_size=None)
        data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
        Trainer(cfg, data, placement(cfg, torch.device("cpu"), True))
    spec = get_model("wgan_small")
    with pytest.raises(ConfigError, match="IMAGE_SIZE 48"):
        spec.prepare(build_config(spec.defaults, {"image_size": 48}), None)


def test_bce_rules_read_the_guides_tables():
    def log(**cols):
        n = len(next(iter(cols.values())))
        return pd.DataFrame({"epoch": range(n), **cols})

    n = 12
    strong = log(d_loss=[0.05] * n, g_loss=[40.0] * n, d_real=[0.99] * n, d_fake=[0.01] * n)
    assert diagnose(strong, "bce").label == "discriminator_dominant"
    collapsed = log(d_loss=[0.73] * n, g_loss=[0.56] * n, d_acc=[0.5] * n, g_acc=[0.998] * n)
    assert diagnose(collapsed, "bce").label == "mode_collapse"
    healthy = log(d_loss=[0.69 + 0.01 * math.sin(i) for i in range(n)], g_loss=[0.7] * n,
                  d_acc=[0.7 - 0.01 * i for i in range(n)], g_acc=[0.9] * n)
    assert diagnose(healthy, "bce").label == "healthy"
    row = {"epoch": 3, "d_loss": 0.02, "g_loss": 45.0, "d_real": 0.99, "d_fake": 0.01}
    assert "Discriminator too strong" in epoch_warning(row, "bce")
    assert epoch_warning({**row, "d_loss": 1.0, "g_loss": 3.0, "d_real": 0.8, "d_fake": 0.2}, "bce") is None


def test_cgan_takes_its_classes_from_a_folders_subfolders(tmp_path):
    from PIL import Image

    root = tmp_path / "drawings"
    for c, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
        (root / f"class_{c}").mkdir(parents=True)
        for i in range(12):
            Image.new("RGB", (24, 24), tuple(v + 3 * i for v in colour)).save(root / f"class_{c}" / f"{i}.png")
    cfg = _cfg("cgan", data=f"folder:{root}", dataset_size=None, image_size=16, batch_size=12)
    trainer = train(cfg, tmp_path / "run", torch.device("cpu"))
    assert trainer.cfg.num_classes == 3
    frame = pd.read_csv(tmp_path / "run" / "losses.csv")
    assert len(frame) == 2 and frame[["d_real", "d_fake", "d_acc", "g_acc"]].notna().all().all()
    labels = load_dataset(cfg.data, 16, 3, 0, None).labels
    assert sorted(labels.unique().tolist()) == [0, 1, 2] and int((labels == 1).sum()) == 12
