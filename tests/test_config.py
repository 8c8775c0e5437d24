"""Config resolution: defaults, presets, files and --set, and the errors that name the bad value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables.config import GanConfig, build_config, parse_set, read_config_file
from trainables.errors import ConfigError
from trainables.registry import get_model, model_names, preset_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_every_registered_model_builds_its_seed_config():
    for name in model_names():
        spec = get_model(name)
        assert build_config(spec.defaults).model == name
        for preset in spec.presets:
            assert build_config(spec.defaults, preset_overrides(spec, preset)).model == name


def test_seed_defaults_follow_the_guides():
    small = build_config(get_model("wgan_small").defaults)
    large = build_config(get_model("wgan_large").defaults)
    assert (small.learning_rate_g, small.learning_rate_d, small.n_critic, small.batch_size) == (1e-4, 1e-4, 5, 64)
    assert (large.gen_feature_maps, large.disc_feature_maps, large.ema_decay) == (96, 96, 0.995)
    assert (large.beta1, large.beta2) == (0.0, 0.9)
    broken = build_config(get_model("wgan_large").defaults, preset_overrides(get_model("wgan_large"), "postmortem"))
    assert (broken.learning_rate_g, broken.learning_rate_d, broken.n_critic, broken.batch_size,
            broken.ema_decay) == (1e-5, 1e-4, 5, 32, 0.999)


def test_presets_combine_left_to_right_and_user_values_win():
    spec = get_model("wgan_large")
    cfg = build_config(spec.defaults, preset_overrides(spec, "cpu,postmortem"), parse_set(["batch_size=16"]))
    assert (cfg.image_size, cfg.learning_rate_g, cfg.batch_size) == (32, 1e-5, 16)


def test_set_keys_are_case_insensitive_and_typed():
    got = parse_set(["learning_rate_g=2e-4", "N_CRITIC=3", "Ema_Decay=none", "COLOR_JITTER=[0,0,0,0]"])
    assert got == {"learning_rate_g": 2e-4, "n_critic": 3, "ema_decay": None, "color_jitter": (0.0,) * 4}


@pytest.mark.parametrize("item, words", [
    ("NOT_A_KEY=1", ["NOT_A_KEY", "LEARNING_RATE_G"]),
    ("N_CRITIC=2.5", ["N_CRITIC", "2.5"]),
    ("BATCH_SIZE=lots", ["BATCH_SIZE", "lots"]),
    ("LEARNING_RATE_G", ["KEY=VALUE", "LEARNING_RATE_G"]),
])
def test_bad_set_items_name_the_bad_value(item, words):
    with pytest.raises(ConfigError) as err:
        parse_set([item])
    assert all(w in str(err.value) for w in words)


@pytest.mark.parametrize("field, value, words", [
    ("image_size", 50, ["IMAGE_SIZE", "50"]), ("learning_rate_d", 0.0, ["LEARNING_RATE_D"]),
    ("ema_decay", 1.5, ["EMA_DECAY", "1.5"]), ("rotation_degrees", -5.0, ["ROTATION_DEGREES", "-5.0"]),
    ("critic_schedule", "weird", ["CRITIC_SCHEDULE", "weird"]), ("pack", 3, ["BATCH_SIZE 64", "PACK 3"]),
    ("pack", 0, ["PACK", "0"]), ("lr_cooldown", 1.0, ["LR_COOLDOWN", "1.0"]),
])
def test_out_of_range_values_are_refused(field, value, words):
    with pytest.raises(ConfigError) as err:
        GanConfig(model="wgan_small", **{field: value})
    assert all(w in str(err.value) for w in words)


def test_pack_is_refused_by_models_whose_critic_cannot_pack():
    spec = get_model("wgan_small")
    with pytest.raises(ConfigError, match="PACK 2: wgan_small"):
        spec.prepare(build_config(spec.defaults, {"pack": 2}), None)
    toy = get_model("toy2d")
    assert toy.prepare(build_config(toy.defaults, {"pack": 2}), None).pack == 2


def test_unknown_model_and_preset_list_the_valid_ones():
    with pytest.raises(ConfigError, match="wgan_large"):
        get_model("wgan_huge")
    with pytest.raises(ConfigError, match="postmortem"):
        preset_overrides(get_model("wgan_large"), "gpu9000")


def test_seed_style_config_py_is_read_without_running_it(tmp_path):
    path = tmp_path / "config.py"
    path.write_text("import os\nLEARNING_RATE_G = 1e-5\nN_CRITIC = 5\nDEVICE = os.getcwd()\nlower = 3\n")
    assert read_config_file(path) == {"learning_rate_g": 1e-5, "n_critic": 5}


def test_config_json_round_trips(tmp_path):
    cfg = build_config(get_model("wgan_large").defaults)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert build_config({}, read_config_file(path)) == cfg


def test_bad_config_files_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_config_file(tmp_path / "bad.json")


@pytest.mark.parametrize("data", ["ring8", "grid25"])
def test_toy2d_defaults_on_a_mixture_are_the_config_the_anchors_bench_found(data):
    found = json.loads((ROOT / "search_spaces" / "found" / f"toy2d_{data}.json").read_text())
    resolved = json.loads(json.dumps(build_config(get_model("toy2d").defaults_for(data)).to_dict()))
    assert {key: resolved[key] for key in found} == found  # every key the bench wrote (fields added since: defaults)


def test_a_named_mixture_takes_its_found_config_and_the_user_still_wins():
    spec = get_model("toy2d")
    assert spec.defaults_for(None) == spec.defaults  # no data named: the seed row
    cfg = build_config(spec.defaults_for("grid25"), preset_overrides(spec, "cpu"), {"num_epochs": 7})
    assert (cfg.data, cfg.batch_size, cfg.num_epochs) == ("grid25", 256, 7)
    assert get_model("wgan_large").defaults_for("digits") == {**get_model("wgan_large").defaults, "data": "digits"}
