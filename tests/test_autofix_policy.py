"""autofix --apply's pure parts: each stage's search around the guide's values, and when a search ends."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from search_spaces.spaces import resolve, seed_point
from trainables.config import FIELDS, GanConfig, build_config
from trainables.registry import get_model, preset_overrides
from tuner.core.diagnosis import Diagnosis
from tuner.core.prescription import prescribe
from tuner.core.stopping import StopPolicy, beats, fixes, outcome, stop_decision
from tuner.external import proxy, run_quality
from tuner.ray_hooks import CollapseStopper, Persisted, SeekStopper
from tuner.stage_search import stage_search


def postmortem() -> dict:
    spec = get_model("wgan_large")
    cfg = build_config(spec.defaults, preset_overrides(spec, "cpu"), preset_overrides(spec, "postmortem"))
    return {k: getattr(cfg, k) for k in FIELDS}


def critic_dominates() -> Diagnosis:
    return Diagnosis("discriminator_dominant", "wgan", 0, 0.8, (), 30)


def test_each_stage_starts_at_the_guides_values_and_searches_around_them():
    config = postmortem()
    plan = prescribe(critic_dominates(), GanConfig(**config).to_dict())
    stage2 = stage_search(2, plan.stage(2), config, str.lower)
    # guide 000's fix, exactly: equal rates, N_CRITIC 3, batch 64, EMA 0.995
    assert stage2.changes == {"learning_rate_g": 1e-4, "n_critic": 3, "batch_size": 64, "ema_decay": 0.995}
    assert seed_point(stage2.space, stage2.base) == stage2.changes  # the first trial is the guide's values
    assert stage2.space["learning_rate_g"].low == pytest.approx(1e-4 / 3)
    assert stage2.space["learning_rate_g"].high == pytest.approx(3e-4)
    assert (stage2.space["n_critic"].low, stage2.space["n_critic"].high) == (1, 5)
    assert set(stage2.space) == set(stage2.changes)  # only the stage's parameters move
    assert GanConfig(**resolve(stage2.base, {})).learning_rate_d == config["learning_rate_d"]


def test_a_stage_without_a_searchable_change_searches_the_learning_rates():
    config = {**postmortem(), "model": "wgan_small"}
    plan = prescribe(critic_dominates(), GanConfig(**config).to_dict())
    stage3 = stage_search(3, plan.stage(3), config, str.lower)
    assert stage3.changes == {"model": "wgan_large"}
    assert set(stage3.space) == {"learning_rate_d", "learning_rate_g"}


def test_parameters_the_users_config_lacks_are_skipped_not_invented():
    config = {"LR_G": 5e-4, "LR_D": 1e-5, "N_CRITIC": 1, "LAMBDA_GP": 2.0}
    plan = prescribe(Diagnosis("generator_dominant", "wgan", 0, 0.8, (), 20), config)
    stage2 = stage_search(2, plan.stage(2), config)
    # the user's own spelling is kept; LR_D 10x below WGAN-GP's canonical 1e-4 comes most of the way back
    assert stage2.changes == {"N_CRITIC": 3, "LR_G": 2.5e-4, "LR_D": pytest.approx(1e-4 * 0.1 ** 0.25)}
    stage4 = stage_search(4, plan.stage(4), config)
    assert stage4.changes == {} and stage4.skipped == ("DISC_FEATURE_MAPS",)


def report(epoch: int, label: str, quality: float, streak: int = 1, measured: float = 1.0) -> dict:
    return {"epoch": epoch, "training_iteration": epoch + 1, "diagnosis": label, "diagnosis_streak": streak,
            "quality": quality, "quality_measured": measured, "diagnosis_evidence": "[]"}


def test_the_broken_runs_label_stops_a_trial_without_a_sample_signal():
    plain, autofix = StopPolicy(20), StopPolicy(20, confirmed=("generator_dominant",))
    result = report(12, "generator_dominant", -3.0, streak=5)
    assert stop_decision(result, plain) is None  # a sweep waits for the samples to agree
    assert stop_decision(result, autofix).status == "stopped:generator_dominant"


def test_the_search_ends_at_the_first_fix_or_when_the_stage_gives_up():
    policy = StopPolicy(10, confirmed=("generator_dominant",), asha=False)
    seeker = SeekStopper(CollapseStopper(policy), policy, goal=-4.8, give_up_after=2)
    assert not seeker("a", report(5, "healthy", -1.0)) and not seeker.stop_all()  # not at its last epoch yet
    assert not seeker("a", report(9, "healthy", -5.0)) and not seeker.stop_all()  # healthy, not better
    seeker("b", report(9, "healthy", -1.0))
    assert seeker.stop_all()
    quitter = SeekStopper(CollapseStopper(policy), policy, goal=-4.8, give_up_after=2)
    assert quitter("a", report(9, "generator_dominant", -3.0, streak=4)) and not quitter.stop_all()
    assert quitter("b", report(9, "generator_dominant", -3.0, streak=4)) and quitter.stop_all()
    cut = outcome(report(4, "healthy", -1.0), policy)
    assert cut.status == "stopped:ended" and cut.optuna_state == "PRUNED" and not cut.collapsed


def test_beating_the_broken_run_needs_a_measured_better_quality():
    assert beats(-0.3, -0.39) and not beats(-0.4, -0.39) and not beats(math.nan, -0.39)
    assert beats(-0.3, math.nan) and beats(-0.3, None)
    assert not fixes(report(9, "healthy", -0.3), StopPolicy(20), None)  # not the last epoch


def test_a_log_without_quality_is_scored_by_the_loss_proxy():
    frame = pd.DataFrame({"epoch": [0, 1], "d_loss": [-5.0, -2.0], "g_loss": [1.0, 1.0]})
    assert list(proxy(frame, "wgan")) == [-5.0, -2.0]
    assert run_quality(frame, "wgan") == -2.0
    assert run_quality(frame.assign(quality=[0.1, float("nan")]), "wgan") == 0.1


def test_a_loss_proxy_is_the_objective_but_never_a_sample_measurement():
    from tuner.epoch_report import Report

    report = Report()
    rows = [{"epoch": float(e), "d_loss": -5.0 + e, "g_loss": 1.0} for e in range(12)]  # |d_loss| falls: proxy rises
    for row in rows:
        out = report.add(row, "wgan", objective=-abs(row["d_loss"]))
    assert out["quality"] == -abs(rows[-1]["d_loss"]) and out["quality_measured"] == 1.0
    assert all("quality" not in r for r in report.history)  # the diagnosis sees the user's columns only
    assert "quality_improving" not in out["diagnosis_evidence"]


def bce_config(model: str, *presets: str) -> dict:
    spec = get_model(model)
    cfg = build_config(spec.defaults, *(preset_overrides(spec, p) for p in presets))
    return {k: getattr(cfg, k) for k in FIELDS}


def bce_plan(config: dict, label: str = "discriminator_dominant"):
    return prescribe(Diagnosis(label, "bce", 0, 0.8, (), 20), GanConfig(**config).to_dict())


def test_the_bce_ladder_takes_guide_004s_steps_in_its_order():
    plan = bce_plan(bce_config("cgan", "cpu", "strong_d"))  # 004's run before its fixes
    steps = [(s.stage, s.parameter, s.old, s.new) for s in plan.steps]
    assert steps == [(1, "LEARNING_RATE_D", 4e-4, 1e-4),
                     (2, "LABEL_SMOOTHING", 0.0, 0.1), (2, "NOISE_STD", 0.0, 0.05),
                     (3, "D_TRAIN_RATIO", 1, 2),
                     (4, "D_DROPOUT", 0.0, 0.4), (4, "SPECTRAL_NORM", False, True),
                     (5, "MODEL", "cgan", "wgan_small")]


def test_a_config_already_at_the_guides_first_values_gets_its_second_rung():
    plan = bce_plan(bce_config("cgan", "cpu"))  # 004's fixed config: LR_D 1e-4, smoothing 0.1, noise 0.05
    news = {s.parameter: s.new for s in plan.steps}
    assert news["LEARNING_RATE_D"] == 5e-5 and news["LABEL_SMOOTHING"] == 0.2 and news["NOISE_STD"] == 0.1
    past = bce_plan({**bce_config("cgan", "cpu"), "learning_rate_d": 5e-5, "label_smoothing": 0.2})
    assert "LEARNING_RATE_D" not in {s.parameter for s in past.steps}  # past the last rung: no step
    assert "LABEL_SMOOTHING" not in {s.parameter for s in past.steps}


def test_a_switch_to_the_wasserstein_loss_brings_wgan_smalls_recipe_and_a_size_it_builds():
    from trainables.registry import switch_model

    config = bce_config("dcgan")  # 28x28 digits, RMSprop, dropout 0.4
    plan = bce_plan(config)
    stage5 = stage_search(5, plan.stage(5), config, str.lower, lambda changed: switch_model(config, changed))
    base = stage5.base
    assert stage5.changes == {"model": "wgan_small"}
    assert (base["image_size"], base["channels"], base["data"]) == (32, 1, "digits")
    assert (base["optimizer"], base["n_critic"], base["lambda_gp"], base["d_dropout"]) == ("adam", 5, 10.0, 0.0)
    assert base["learning_rate_d"] == base["learning_rate_g"] == 1e-4
    assert stage5.space["learning_rate_d"].low == pytest.approx(1e-4 / 3)  # searched around wgan_small's rates
    cfg = get_model("wgan_small").prepare(GanConfig(**resolve(base, {})), None)
    assert cfg.model == "wgan_small" and cfg.num_classes is None


def test_a_points_models_plan_never_switches_to_an_image_model():
    # guide 001's stage 3 (MODEL wgan_large) is for image GANs; toy2d's 2-D points cannot train on it
    toy = GanConfig(**get_model("toy2d").defaults).to_dict()
    for label in ("unstable", "discriminator_dominant", "generator_dominant"):
        plan = prescribe(Diagnosis(label, "wgan", 0, 0.8, (), 30), toy)
        assert plan.steps and all(s.parameter != "MODEL" for s in plan.steps), label
    image = GanConfig(**get_model("wgan_small").defaults).to_dict()
    plan = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), image)
    assert [s.new for s in plan.steps if s.parameter == "MODEL"] == ["wgan_large"]


def test_the_stoppers_state_is_kept_in_the_sweeps_folder_and_taken_up_on_resume(tmp_path):
    policy = StopPolicy(10, confirmed=("generator_dominant",), asha=False)
    first = Persisted(SeekStopper(CollapseStopper(policy), policy, goal=-4.8, give_up_after=2), tmp_path / "s.json")
    assert first("a", report(9, "generator_dominant", -3.0, streak=4)) and not first.stop_all()
    resumed = Persisted(SeekStopper(CollapseStopper(policy), policy, goal=-4.8, give_up_after=2), tmp_path / "s.json")
    assert resumed.inner.state_dict()["inner"] == {"collapsed": []}  # read on first use, as Ray restores it
    assert resumed("b", report(9, "generator_dominant", -3.0, streak=4)) and resumed.stop_all()  # a's counted
    assert json.loads((tmp_path / "s.json").read_text()) == {"done": True, "inner": {"collapsed": ["a", "b"]}}


def toy(**overrides) -> dict:
    return GanConfig(**{**get_model("toy2d").defaults, **overrides}).to_dict()


HOT = {"learning_rate_g": 1e-2, "learning_rate_d": 1e-2, "beta1": 0.9, "beta2": 0.99, "lambda_gp": 0.1}


def test_a_rate_20x_the_canonical_one_goes_most_of_the_way_back_at_once():
    plan = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), toy(**HOT))
    rates = {s.parameter: s.new for s in plan.stage(2) if s.parameter.startswith("LEARNING_RATE")}
    canonical = get_model("toy2d").defaults["learning_rate_g"]  # 5e-4: the hot rate is 20x it
    assert rates == {"LEARNING_RATE_G": pytest.approx(canonical * 20 ** 0.25),
                     "LEARNING_RATE_D": pytest.approx(canonical * 20 ** 0.25)}
    assert max(rates.values()) < 2.5 * canonical  # halving would have left it at 10x
    near = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), toy(learning_rate_g=1e-3, learning_rate_d=1e-3))
    assert {s.parameter: s.new for s in near.stage(2)} == {"LEARNING_RATE_G": 5e-4, "LEARNING_RATE_D": 5e-4}
    diverged = prescribe(Diagnosis("diverged", "wgan", 0, 0.8, (), 30), toy(learning_rate_g=0.5, learning_rate_d=0.5))
    assert {s.parameter: s.new for s in diverged.stage(2)}["LEARNING_RATE_G"] == pytest.approx(5e-4 * 1000 ** 0.25)


def test_adam_betas_far_from_wgan_gps_are_put_back_with_the_rates():
    plan = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), toy(**HOT))
    assert {s.parameter: (s.old, s.new) for s in plan.stage(2) if s.parameter.startswith("BETA")} == \
        {"BETA1": (0.9, 0.0), "BETA2": (0.99, 0.9)}
    assert all(s.stage == 2 for s in plan.steps if s.parameter.startswith("BETA"))  # not before LAMBDA_GP
    at_canonical = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), toy(learning_rate_g=1e-2))
    assert not [s for s in at_canonical.steps if s.parameter.startswith("BETA")]
    rmsprop = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), toy(optimizer="rmsprop", beta2=0.99))
    assert not [s for s in rmsprop.steps if s.parameter.startswith("BETA")]  # RMSprop's BETA2 is its smoothing


def test_a_critic_rate_far_below_the_canonical_one_is_raised_when_the_generator_dominates():
    plan = prescribe(Diagnosis("generator_dominant", "wgan", 0, 0.8, (), 30), toy(learning_rate_d=1e-7))
    lr_d = next(s.new for s in plan.stage(2) if s.parameter == "LEARNING_RATE_D")
    assert lr_d == pytest.approx(5e-4 * (1e-7 / 5e-4) ** 0.25) and lr_d > 100 * 1e-7
    near = prescribe(Diagnosis("generator_dominant", "wgan", 0, 0.8, (), 30), toy(learning_rate_d=2e-4))
    assert "LEARNING_RATE_D" not in {s.parameter for s in near.steps}  # within 4x: the guide's steps only


def test_a_slow_bce_generator_is_raised_to_twice_the_discriminators_new_rate():
    slow = {**bce_config("cgan", "cpu", "strong_d"), "learning_rate_d": 2e-3, "learning_rate_g": 5e-5}
    stage1 = {s.parameter: (s.old, s.new) for s in bce_plan(slow).stage(1)}
    assert stage1 == {"LEARNING_RATE_D": (2e-3, 1e-4), "LEARNING_RATE_G": (5e-5, 2e-4)}  # 004: LR_D half LR_G
    collapse = {s.parameter for s in bce_plan(slow, "mode_collapse").stage(1)}
    assert collapse == {"LEARNING_RATE_D", "LEARNING_RATE_G"}
    fast = {**slow, "learning_rate_g": 3e-4}
    assert {s.parameter for s in bce_plan(fast).stage(1)} == {"LEARNING_RATE_D"}  # already above: kept


def test_a_missing_penalty_comes_back_to_at_least_the_models_canonical_one_and_a_lone_critic_step_to_three():
    toy_plan = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), toy(**HOT, n_critic=1))
    assert [(s.parameter, s.new) for s in toy_plan.stage(1)] == [("LAMBDA_GP", 1.0)]  # toy2d's seed penalty
    assert {s.parameter: s.new for s in toy_plan.stage(2)}["N_CRITIC"] == 3  # 5 * (1/5) ** 0.25, rounded
    image = GanConfig(**{**get_model("wgan_small").defaults, "lambda_gp": 0.1}).to_dict()
    assert [(s.parameter, s.new) for s in prescribe(Diagnosis("diverged", "wgan", 0, 0.8, (), 30), image).stage(1)] \
        == [("LAMBDA_GP", 10.0)]  # guide 001's canonical 10 for the image models
    user = prescribe(Diagnosis("unstable", "wgan", 0, 0.8, (), 30), {"LAMBDA_GP": 20.0, "N_CRITIC": 3})
    assert [(s.parameter, s.new) for s in user.steps if s.parameter in ("LAMBDA_GP", "N_CRITIC")] == \
        [("LAMBDA_GP", 40.0)]  # 10 -> 20 -> 40 (001 2.1); 3 critic steps are within 4x of 5: no step
