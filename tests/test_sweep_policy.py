"""The sweep's pure parts: search spaces (derived knobs, the seed point, space files) and the stop policy."""

from __future__ import annotations

import json

import pytest

from search_spaces.spaces import WGAN_SPACE, parse_space, resolve, seed_point
from trainables.config import FIELDS, GanConfig, build_config
from trainables.errors import ConfigError
from trainables.registry import get_model, preset_overrides
from tuner.core.stopping import StopPolicy, outcome, stop_decision


def base(model: str = "wgan_large", preset: str = "cpu") -> dict:
    spec = get_model(model)
    cfg = build_config(spec.defaults, preset_overrides(spec, preset))
    return {k: getattr(cfg, k) for k in FIELDS}


def test_the_seed_point_reproduces_the_seed_config_exactly():
    b = base("wgan_large", "seed")
    point = seed_point(WGAN_SPACE, b)
    assert point["lr_ratio"] == 1.0 and point["width"] == 1.0 and point["augment"] == 0.5
    assert GanConfig(**resolve(b, point)) == GanConfig(**b)


def test_derived_knobs_set_rates_widths_and_augmentation_together():
    b = base("wgan_large", "cpu")
    cfg = GanConfig(**resolve(b, {"learning_rate_d": 2e-4, "lr_ratio": 0.1, "width": 2.0, "augment": 0.0}))
    assert cfg.learning_rate_g == pytest.approx(2e-5)
    assert cfg.gen_feature_maps == cfg.disc_feature_maps == 2 * b["gen_feature_maps"]  # G and D grow together
    assert cfg.horizontal_flip_prob == 0.0 and cfg.rotation_degrees == 0.0 and max(cfg.color_jitter) == 0.0


def test_a_space_file_is_parsed_and_bad_ones_name_the_bad_entry():
    space = parse_space({"LAMBDA_GP": {"low": 5, "high": 20, "log": True}, "N_CRITIC": [2, 3],
                         "LR_RATIO": {"low": 0.1, "high": 1}, "batch_size": {"choices": [32, 64]}}, FIELDS, "s.json")
    assert space["lambda_gp"].log and space["n_critic"].choices == (2, 3) and space["lr_ratio"].kind == "float"
    bad = {"BETA1": [0.0, 0.5]}, {"LAMBDA": [1]}, {"LAMBDA_GP": {"low": 5}}, {"LAMBDA_GP": {"low": 0, "high": 1,
                                                                                               "log": True}}, {}
    words = ("BETA1", "LAMBDA", "LAMBDA_GP", "log-scaled", "must map")
    for data, word in zip(bad, words):
        with pytest.raises(ConfigError, match=word):
            parse_space(data, FIELDS, "s.json")


def report(label: str, epoch: int, streak: int, signals: tuple[str, ...] = ()) -> dict:
    evidence = [{"signal": s, "value": 1.0, "threshold": "t", "source": "g"} for s in signals]
    return {"diagnosis": label, "epoch": epoch, "diagnosis_streak": streak, "diagnosis_onset": epoch - streak,
            "diagnosis_evidence": json.dumps(evidence), "quality": 0.1}


def test_divergence_stops_at_once_and_collapse_only_after_settling_and_confirmation():
    policy = StopPolicy(max_epochs=20)  # settles after 10 epochs, confirms over 3
    assert stop_decision(report("diverged", 0, 1, ("non_finite_or_exploded_loss_epoch",)), policy).status == "diverged"
    collapse = ("collapse_score_share",)
    assert stop_decision(report("mode_collapse", 6, 5, collapse), policy) is None  # not settled yet
    assert stop_decision(report("mode_collapse", 11, 2, collapse), policy) is None  # not confirmed yet
    verdict = stop_decision(report("mode_collapse", 11, 3, collapse), policy)
    assert verdict.status == "stopped:mode_collapse" and verdict.collapsed and verdict.optuna_state == "FAIL"
    assert "collapse_score_share" in verdict.reason


def test_a_dominance_label_from_the_losses_alone_does_not_stop_a_trial():
    policy = StopPolicy(max_epochs=20)
    losses_only = ("g_loss_trend", "g_loss_rise", "d_loss_tail_median")
    assert stop_decision(report("discriminator_dominant", 15, 8, losses_only), policy) is None
    with_samples = losses_only + ("collapse_score_share",)
    assert stop_decision(report("discriminator_dominant", 15, 8, with_samples), policy).collapsed
    assert stop_decision(report("unstable", 15, 8, ("collapse_score_share",)), policy) is None  # ASHA's job


def test_outcomes_say_how_a_trial_ended_and_what_optuna_is_told():
    policy = StopPolicy(max_epochs=20)
    assert outcome(report("healthy", 19, 10), policy).status == "healthy"
    assert outcome(report("healthy", 19, 10), policy).optuna_state == "COMPLETE"
    asha = outcome(report("healthy", 3, 4), policy)
    assert asha.status == "stopped:asha" and not asha.collapsed and asha.optuna_state == "PRUNED"
    assert outcome(report("unstable", 19, 2), policy).status == "finished:unstable"
    assert outcome(report("healthy", 5, 1), policy, error=True).optuna_state == "FAIL"


def test_a_relative_image_folder_is_made_absolute_for_the_trials(tmp_path, monkeypatch):
    from PIL import Image

    from tuner.targets import checked_data

    (tmp_path / "imgs").mkdir()
    for i in range(10):  # the fewest a data set may have
        Image.new("RGB", (20, 20), (25 * i, 0, 0)).save(tmp_path / "imgs" / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    cfg = checked_data(GanConfig(model="wgan_small", data="folder:imgs", image_size=16))
    assert cfg.data == f"folder:{tmp_path / 'imgs'}"  # trials run in their own working directories


def test_a_healthy_equal_rate_run_with_drifting_g_loss_is_never_stopped():
    # a run of the independent reference trainer (bench/refgan, equal rates 5e-4, coloured digits) whose samples
    # were healthy (9 digit classes), while g_loss climbed from -5.6 to 3.8 over its second half: fed epoch by
    # epoch through the trial's own report and the stop policy, with every collapse label confirmed without
    # the samples (autofix's strictest setting), it is never stopped and ends healthy
    from pathlib import Path

    from tuner.core.logs import read_run
    from tuner.core.signals import trend
    from tuner.core.stopping import STOP_LABELS
    from tuner.epoch_report import Report

    corpus = Path(__file__).parents[1] / "bench" / "data" / "corpus" / "dev"
    truth = json.loads((corpus / "manifest.json").read_text())["07_wgan_equal_digits"]
    assert truth["label"] == "healthy" and truth["config"]["lr_g"] == truth["config"]["lr_d"]
    frame = read_run(next(corpus.glob("07_wgan_equal_digits.[!s]*"))).frame
    second_half = frame["g_loss"].iloc[len(frame) // 2:]
    assert trend(second_half) > 0.8 and second_half.iloc[-1] - second_half.iloc[0] > 5
    policy = StopPolicy(max_epochs=len(frame), confirmed=STOP_LABELS)
    report, result = Report(), {}
    for row in frame.to_dict("records"):
        result = report.add({k: float(v) for k, v in row.items()}, "wgan")
        assert stop_decision(result, policy) is None, (row["epoch"], result["diagnosis"])
    assert outcome(result, policy).status == "healthy"


def test_the_honest_searcher_tells_optuna_each_trials_fate_through_rays_private_attributes():
    """HonestOptunaSearch reads OptunaSearch's `_ot_trials`, `_completed_trials` and `_ot_study` (Ray has no
    public hook for a trial's final state): this fails loudly on a Ray whose OptunaSearch renames them."""
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState

    from search_spaces.spaces import DefineByRun, log_float
    from tuner.ray_hooks import HonestOptunaSearch

    searcher = HonestOptunaSearch(space=DefineByRun({"learning_rate_d": log_float(1e-5, 1e-3)}), metric="quality",
                                  mode="max", sampler=TPESampler(seed=0), policy=StopPolicy(10, asha=False))
    for trial_id in ("done", "collapsed"):
        assert searcher.suggest(trial_id) is not None
    assert set(searcher._ot_trials) == {"done", "collapsed"} and not searcher._completed_trials
    searcher.on_trial_complete("done", {"epoch": 9, "training_iteration": 10, "quality": 0.5,
                                        "diagnosis": "healthy", "diagnosis_evidence": "[]"})
    searcher.on_trial_complete("collapsed", {"epoch": 0, "training_iteration": 1, "quality": 0.1,
                                             "diagnosis": "diverged", "diagnosis_evidence": "[]"})
    states = {t.user_attrs["status"]: t.state for t in searcher.study().trials}
    assert states == {"healthy": TrialState.COMPLETE, "diverged": TrialState.FAIL}
    assert searcher._completed_trials == {"done", "collapsed"}


def test_the_drivers_trial_config_is_the_one_the_trial_trains():
    # MLflow's params come from the driver's copy of a trial's config: a conditional model's NUM_CLASSES is the
    # data's, as in the trial's own config.json, not the seed config's None
    from search_spaces.spaces import model_space
    from tuner.targets import ModelTarget, checked_data

    base = checked_data(GanConfig(model="cgan", image_size=32, dataset_size=96)).fields()
    assert ModelTarget("cgan").config(base, seed_point(model_space("cgan"), base)).num_classes == 48


def _sweep_settings(*argv: str):
    from tuner.cli import parse
    from tuner.cli.sweep import _settings

    return _settings(parse(["sweep", *argv]))


def test_a_toy2d_sweep_on_a_mixture_starts_from_the_config_found_for_it():
    from search_spaces.spaces import TOY2D_SPACE

    settings, _ = _sweep_settings("toy2d", "--data", "grid25", "--epochs", "3")
    found = build_config(get_model("toy2d").defaults_for("grid25"))
    first = GanConfig(**resolve(settings.base, seed_point(TOY2D_SPACE, settings.base)))
    assert first == found.replace(num_epochs=3, quality_every=first.quality_every,
                                  checkpoint_every=first.checkpoint_every)


def test_a_cpu_sweep_without_enqueue_tries_the_guides_known_bad_config_second():
    from search_spaces.cases import GUIDE_CASES
    from tuner.run_context import cuda_available

    if cuda_available():
        pytest.skip("the known-bad trial is the CPU budget's; with CUDA the sweep keeps the seed-sized search")
    case = GUIDE_CASES["wgan_large"]
    settings, chose = _sweep_settings("wgan_large")
    assert settings.points == ({**seed_point(settings.space, settings.base), **case.point},)  # the seed config but
    assert f"trial 2 is a known-bad config, {case.name}" in chose
    assert _sweep_settings("wgan_large", "--enqueue", '{"n_critic": 2}')[0].points == ({"n_critic": 2},)
    assert _sweep_settings("wgan_large", "--set", "LEARNING_RATE_D=1e-4")[0].points == ()  # the space cannot say it


def test_the_cpu_budget_lets_the_stopper_end_a_collapse_before_ashas_second_rung():
    from tuner.cli.sweep import CPU_BUDGET

    policy = StopPolicy(CPU_BUDGET["epochs"])
    earliest_stop = policy.settled + policy.window  # training iterations: settled, then the confirmation window
    second_rung = CPU_BUDGET["quality_every"] * 3  # ASHA's grace period is QUALITY_EVERY, its reduction factor 3
    assert earliest_stop < second_rung <= CPU_BUDGET["epochs"]
