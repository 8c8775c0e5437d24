"""The diagnosis core on a labelled corpus of real gantune runs (tests/data/diagnosis, made by
`python bench/diagnosis.py make`; manifest.json says how each run was made and its true label and onset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuner.core.diagnosis import LABELS, diagnose
from tuner.core.logs import read_run

CORPUS = Path(__file__).parent / "data" / "diagnosis"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_corpus_run_gets_its_true_label_and_onset(name):
    truth = MANIFEST[name]
    run = read_run(CORPUS / f"{name}.csv")
    found = diagnose(run.frame, run.family)
    assert found.label == truth["label"], [e.to_dict() for e in found.evidence]
    if truth["onset"] is not None:
        assert found.onset_epoch is not None and abs(found.onset_epoch - truth["onset"]) <= 2


def test_the_corpus_covers_healthy_runs_and_every_failure_label():
    labels = {t["label"] for t in MANIFEST.values()}
    assert labels == set(LABELS)
    assert sum(t["label"] == "healthy" for t in MANIFEST.values()) >= 3


def test_a_converged_critic_loss_jittering_around_zero_is_not_instability():
    # healthy_grid25: d_loss goes from -6.7 to about 0 as the distributions meet, then jitters by 0.1 around 0;
    # against its own tiny level that jitter once read as "both losses oscillate wildly"
    run = read_run(CORPUS / "healthy_grid25.csv")
    tail = run.frame["d_loss"].iloc[-7:]
    assert tail.abs().median() < 0.2 and run.frame["d_loss"].abs().max() > 5
    assert diagnose(run.frame, "wgan").label == "healthy"


def test_samples_that_clearly_improve_rule_out_a_dominating_critic():
    # guide 000's fix early in training: g_loss and the W estimate still climb, but the quality rises fast
    run = read_run(CORPUS / "healthy_improving_wgan_large_cpu.csv")
    found = diagnose(run.frame, "wgan")
    assert found.label == "healthy" and "quality_improving" in [e.signal for e in found.evidence]
    assert diagnose(run.frame.drop(columns="quality"), "wgan").label == "discriminator_dominant"


def test_wild_generator_loss_alone_is_not_instability_but_with_a_broken_penalty_it_is():
    # healthy_grid25's g_loss swings by more than its own size once the critic's estimate is near 0, but its
    # gradient norm stays near 1; unstable_from_start (learning rates 1e-2, LAMBDA_GP 0.1) swings as wildly
    # with a gradient norm of 2-5: guide 001's "learning rate too high or LAMBDA_GP too low"
    healthy, unstable = (read_run(CORPUS / f"{n}.csv").frame for n in ("healthy_grid25", "unstable_from_start"))
    assert healthy["grad_norm"].iloc[-10:].median() < 1.5 < 2.0 < unstable["grad_norm"].iloc[-10:].median()
    found = diagnose(unstable, "wgan")
    assert found.label == "unstable" and found.onset_epoch == 0
    assert {e.signal for e in found.evidence} == {"g_loss_swings", "grad_norm_tail_median"}
    assert diagnose(healthy, "wgan").label == "healthy"


# The reference trainer's corpora (bench/data/corpus: another trainer's logs, in ten layouts and per iteration),
# labelled from their samples. The figures are BENCHMARKS.md's; a rule change that loses ground fails here.
REFERENCE = Path(__file__).parents[1] / "bench" / "data" / "corpus"
FLOORS = {"dev": 0.83, "held": 0.76, "dev_steps": 0.84, "held_steps": 0.65}


@pytest.mark.parametrize("corpus", sorted(FLOORS))
def test_another_trainers_logs_flag_no_healthy_run_and_keep_their_accuracy(corpus):
    import sys
    sys.path.insert(0, str(REFERENCE.parents[1]))
    from diagnosis import score  # bench/diagnosis.py

    calls = [c for c in score(REFERENCE / corpus) if c.clear]
    assert not [c.name for c in calls if c.truth == "healthy" and c.found.label != "healthy"]
    assert sum(c.right for c in calls) / len(calls) >= FLOORS[corpus]


# Guide 002's integrated system (bench/data/corpus/integrated): a 'before' and an 'after' run, each generator labelled
# from its sample grid, each judged on its own view of the log (tuner.diagnosis_integrated) as gantune judges it.
INTEGRATED = REFERENCE / "integrated"
INTEGRATED_RUNS = json.loads((INTEGRATED / "manifest.json").read_text())["runs"]


@pytest.mark.parametrize("name", sorted(INTEGRATED_RUNS))
def test_each_generator_of_an_integrated_run_gets_the_label_read_from_its_samples(name):
    from tuner.diagnosis_integrated import diagnose_networks

    found = diagnose_networks(read_run(INTEGRATED / f"{name}.csv").frame).by_network
    assert {n: d.label for n, d in found.items()} == {n: INTEGRATED_RUNS[name][f"label_{n}"] for n in found}


def test_alike_samples_that_the_discriminator_rejects_are_a_collapse_and_either_alone_is_not():
    # the 'after' run's generator: one texture in every sample (diversity 0.45 of the data's), D(fake) 0.08 while
    # D(real) 0.84 stays short of the dominance rule's 0.9 (guide 004's gray/uniform images under a strong D)
    from tuner.diagnosis_integrated import VIEWS, network_view

    view = network_view(read_run(INTEGRATED / "after_cpu60.csv").frame, VIEWS["generator"])
    found = diagnose(view, "bce")
    assert found.label == "mode_collapse"
    assert {"diversity_ratio_low", "d_fake_below_healthy"} <= {e.signal for e in found.evidence}
    assert 35 <= found.onset_epoch <= 50  # D(fake) falls under 0.1 from about epoch 42
    assert diagnose(view.assign(diversity_ratio=0.77), "bce").label == "healthy"  # the 'before' run's diversity
    assert diagnose(view.assign(d_fake=0.2), "bce").label == "healthy"
