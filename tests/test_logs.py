"""tuner.core.logs: every loss-log layout it reads, and every error it names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from trainables.errors import GantuneError
from tuner.core.logs import FAMILIES, LogError, RunLog, find_checkpoints, read_run


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(path, **kwargs) -> str:
    with pytest.raises(LogError) as info:
        read_run(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_seed_minimal(tmp_path):
    log = read_run(write(tmp_path / "seed.csv", "epoch,d_loss,g_loss\n0,1.2,0.7\n1,1.1,0.8\n2,1.0,0.9\n"))
    assert isinstance(log, RunLog)
    assert (log.format, log.family, log.run_dir) == ("seed", "bce", None)
    assert list(log.frame.columns) == ["epoch", "d_loss", "g_loss"]
    assert log.frame["epoch"].tolist() == [0, 1, 2]
    assert log.frame["epoch"].dtype.kind == "i" and log.frame["d_loss"].dtype.kind == "f"
    assert log.source == tmp_path / "seed.csv"


def test_gantune_style_negative_critic_is_wgan(tmp_path):
    text = ("epoch,d_loss,g_loss,d_real,d_fake,gp,grad_norm,w_dist,collapse_score,quality\n"
            "0,-1.5,2.0,3.1,1.6,0.2,1.1,1.5,0,nan\n1,-2.5,3.0,-0.4,-2.9,0.1,0.9,2.5,1,0.4\n")
    log = read_run(write(tmp_path / "losses.csv", text))
    assert (log.format, log.family) == ("seed", "wgan")
    assert {"d_real", "d_fake", "gp", "grad_norm", "w_dist", "collapse_score", "quality"} <= set(log.frame.columns)
    assert math.isnan(log.frame["quality"][0])


def test_bce_acc_fractions(tmp_path):
    text = "epoch,d_loss,d_acc,g_loss,g_acc\n0,0.7,0.5,0.7,0.25\n1,0.6,0.6,0.8,0.2\n"
    log = read_run(write(tmp_path / "a.csv", text))
    assert (log.format, log.family) == ("bce_acc", "bce")
    assert log.frame["d_acc"].tolist() == [0.5, 0.6]


def test_bce_acc_percents_are_scaled(tmp_path):
    text = ("epoch,d_loss,d_acc,g_loss,g_acc,d_loss_real,d_loss_fake,d_acc_real,d_acc_fake\n"
            "0,0.7,50,0.7,25.0,0.6,0.8,100,0\n1,0.6,60,0.8,0.5,0.5,0.7,90,30\n")
    frame = read_run(write(tmp_path / "p.csv", text)).frame
    assert frame["d_acc"].tolist() == pytest.approx([0.5, 0.6])
    assert frame["g_acc"].tolist() == pytest.approx([0.25, 0.005])
    assert frame["d_acc_real"].tolist() == pytest.approx([1.0, 0.9])


def test_bce_probs(tmp_path):
    text = "epoch,D_loss,G_loss,D_real,D_fake\n0,1.3,0.7,0.6,0.4\n1,1.2,0.8,0.7,0.3\n"
    log = read_run(write(tmp_path / "probs.csv", text))
    assert (log.format, log.family) == ("bce_probs", "bce")
    assert list(log.frame.columns) == ["epoch", "d_loss", "g_loss", "d_real", "d_fake"]


def test_bce_lines_skip_noise(tmp_path):
    text = ("Model: sequential\n"
            "0 [D loss: (0.746)(R 0.700, F 0.792)] [D acc: (0.500)(1.000, 0.000)] [G loss: 0.595] [G acc: 0.998]\n"
            "some keras progress bar ====\n"
            "1 [D loss:(1e-3)(R nan,F inf)] [D acc: (50.0)(100.0, 0.0)] [G loss: 0.6] [G acc: 99.0]\n")
    log = read_run(write(tmp_path / "notebook.log", text))
    assert (log.format, log.family) == ("bce_lines", "bce")
    frame = log.frame
    assert frame["epoch"].tolist() == [0, 1]
    assert frame.loc[0, "d_loss_fake"] == pytest.approx(0.792)
    assert frame.loc[1, "d_loss"] == pytest.approx(1e-3)
    assert math.isnan(frame.loc[1, "d_loss_real"]) and frame.loc[1, "d_loss_fake"] == math.inf
    assert frame["d_acc"].tolist() == pytest.approx([0.005, 0.5])  # percent column: every value scaled
    assert frame["g_acc"].tolist() == pytest.approx([0.00998, 0.99])


@pytest.mark.parametrize("sep", [";", "\t", "  "])
def test_sniffed_delimiters(tmp_path, sep):
    rows = ["epoch", "d_loss", "g_loss"], ["0", "1.5", "0.5"], ["1", "1.25", "0.75"]
    log = read_run(write(tmp_path / "l.txt", "".join(sep.join(r) + "\n" for r in rows)))
    assert log.frame["g_loss"].tolist() == [0.5, 0.75]


def test_upper_case_header_and_aliases(tmp_path):
    log = read_run(write(tmp_path / "u.csv", " ITERATION , Discriminator_Loss ,GLOSS\n0,1,2\n1,3,4\n"))
    assert list(log.frame.columns) == ["epoch", "d_loss", "g_loss"]
    assert log.frame["d_loss"].tolist() == [1.0, 3.0]


def test_duplicated_epochs_keep_last_row(tmp_path):
    text = "epoch,d_loss,g_loss\n0,1,1\n1,2,2\n2,3,3\n1,20,20\n2,30,30\n3,4,4\n"
    frame = read_run(write(tmp_path / "d.csv", text)).frame
    assert frame["epoch"].tolist() == [0, 1, 2, 3]
    assert frame["d_loss"].tolist() == [1, 20, 30, 4]


def test_nan_and_inf_accepted(tmp_path):
    text = "epoch,d_loss,g_loss\n0,nan,inf\n1,NaN,-inf\n2,Infinity,\n"
    frame = read_run(write(tmp_path / "n.csv", text)).frame
    assert math.isnan(frame["d_loss"][0]) and math.isnan(frame["d_loss"][1]) and frame["d_loss"][2] == math.inf
    assert frame["g_loss"][0] == math.inf and frame["g_loss"][1] == -math.inf and math.isnan(frame["g_loss"][2])


def test_forced_family(tmp_path):
    path = write(tmp_path / "f.csv", "epoch,d_loss,g_loss\n0,1,2\n")
    assert read_run(path).family == "bce"
    assert read_run(path, family="wgan").family == "wgan"
    assert "sgan" in error_of(path, family="sgan") and "wgan, bce" in error_of(path, family="sgan")
    assert FAMILIES == ("wgan", "bce")


def test_directory_and_checkpoints(tmp_path):
    run = tmp_path / "run"
    write(run / "Losses.CSV", "epoch,d_loss,g_loss\n0,-1,1\n1,-2,2\n")
    for name in ("checkpoint_epoch_0040.pt", "generator_epoch_040.pth", "generator_epoch_010.pth",
                 "checkpoint_5.pt", "notes.txt", "final.pt"):
        write(run / "checkpoints" / name, "x")
    log = read_run(run)
    assert (log.run_dir, log.source.name, log.family) == (run, "Losses.CSV", "wgan")
    assert find_checkpoints(run) == [(5, run / "checkpoints" / "checkpoint_5.pt"),
                                     (10, run / "checkpoints" / "generator_epoch_010.pth"),
                                     (40, run / "checkpoints" / "checkpoint_epoch_0040.pt")]
    assert read_run(log.source).run_dir == run  # a file whose parent holds checkpoints/
    assert find_checkpoints(tmp_path) == []


def test_error_not_found(tmp_path):
    assert error_of(tmp_path / "nope.csv") == f"not found: {tmp_path / 'nope.csv'}"


def test_error_directory_without_losses(tmp_path):
    (tmp_path / "empty_run").mkdir()
    assert error_of(tmp_path / "empty_run") == f"no losses.csv in {tmp_path / 'empty_run'}"


def test_error_empty(tmp_path):
    path = write(tmp_path / "e.csv", "\n  \n")
    assert error_of(path) == f"{path} is empty"


def test_error_header_only(tmp_path):
    path = write(tmp_path / "h.csv", "epoch,d_loss,g_loss\n")
    assert error_of(path) == f"{path} has a header but no rows"


def test_error_no_loss_columns(tmp_path):
    path = write(tmp_path / "x.csv", "step," + ",".join(f"metric_{i}" for i in range(30)) + "\n1,2\n")
    message = error_of(path)
    assert message.startswith(f"{path} has no loss columns (expected epoch,d_loss,g_loss")
    assert "header: step,metric_0" in message and message.endswith("...")


def test_error_non_numeric(tmp_path):
    path = write(tmp_path / "losses.csv", "epoch,d_loss,g_loss\n0,1,1\n\n1,2,abc\n")
    assert error_of(path) == f"{path}: column g_loss holds 'abc' on line 4, not a number"


def test_non_numeric_extra_column_is_dropped(tmp_path):
    frame = read_run(write(tmp_path / "t.csv", "epoch,d_loss,g_loss,time\n0,1,1,12:00\n")).frame
    assert list(frame.columns) == ["epoch", "d_loss", "g_loss"]


@pytest.mark.parametrize("data", [b"epoch,d_loss\x00,g_loss\n", b"epoch,d_loss,g_loss\n0,\xff\xfe,1\n"])
def test_error_binary(tmp_path, data):
    path = tmp_path / "b.csv"
    path.write_bytes(data)
    assert error_of(path) == f"{path} is not a text log (binary data)"
    assert issubclass(LogError, GantuneError)


def test_reads_a_real_gantune_run(tmp_path):
    import torch

    from tests.conftest import tiny_overrides
    from trainables.config import build_config
    from trainables.registry import get_model
    from trainables.run import train

    cfg = build_config(get_model("wgan_small").defaults, tiny_overrides())
    train(cfg, tmp_path / "run", torch.device("cpu"))
    log = read_run(tmp_path / "run")
    assert (log.family, log.format, log.run_dir) == ("wgan", "seed", tmp_path / "run")
    assert log.frame["epoch"].tolist() == [0, 1]
    assert "collapse_score" in log.frame.columns
    assert [e for e, _ in find_checkpoints(tmp_path / "run")] == [0, 1]


def test_comment_lines_and_semicolons(tmp_path):
    text = ("# run 7, lr 1e-4\n# seed 3\nEpoch;Loss_D;Loss_G;D(x);D(G(z))\n1;1,38;0,69;0,51;0,49\n"
            "# resumed\n2;1,2;0,8;0,6;0,4\n")
    log = read_run(write(tmp_path / "dcgan.txt", text))
    assert list(log.frame.columns) == ["epoch", "d_loss", "g_loss", "d_real", "d_fake"]
    assert log.frame["epoch"].tolist() == [1, 2] and log.frame["d_loss"].tolist() == [1.38, 1.2]
    assert log.family == "bce"


@pytest.mark.parametrize("header, canonical", [
    ("iter,lossD,lossG,wasserstein,gradient_penalty", ["epoch", "d_loss", "g_loss", "w_dist", "gp"]),
    ("epoch\tdisc_loss\tgen_loss\tD_acc\tG_acc", ["epoch", "d_loss", "g_loss", "d_acc", "g_acc"]),
    ("Step,critic_loss,generator_loss,W_distance,grad_norm", ["epoch", "d_loss", "g_loss", "w_dist", "grad_norm"]),
])
def test_column_spellings_of_other_trainers(tmp_path, header, canonical):
    sep = "\t" if "\t" in header else ","
    rows = sep.join(["0"] + ["0.5"] * (len(canonical) - 1)) + "\n" + sep.join(["1"] + ["0.25"] * (len(canonical) - 1))
    log = read_run(write(tmp_path / "log.tsv", header + "\n" + rows + "\n"))
    assert list(log.frame.columns) == canonical


def test_percent_signs_in_accuracy_cells(tmp_path):
    log = read_run(write(tmp_path / "a.csv", "epoch,d_loss,g_loss,d_acc\n0,0.7,0.7,55%\n1,0.69,0.7,50.5%\n"))
    assert log.frame["d_acc"].tolist() == pytest.approx([0.55, 0.505])


def test_printed_lines_with_named_values(tmp_path):
    text = ("Starting training\n"
            "Epoch 1/3 - d_loss: 0.70 - g_loss: 0.71 - D(x): 0.52 - D(G(z)): 0.40\n"
            "[2/3][1/2] Loss_D: 1.0 Loss_G: 0.8 D(x): 0.6 D(G(z)): 0.3\n"
            "[2/3][2/2] Loss_D: 2.0 Loss_G: 1.2 D(x): 0.8 D(G(z)): 0.1\n")
    log = read_run(write(tmp_path / "train.log", text))
    assert log.format == "printed"
    assert log.frame["epoch"].tolist() == [1, 2]
    assert log.frame["d_loss"].tolist() == pytest.approx([0.7, 1.5])  # the epoch's batches averaged
    assert log.frame["d_fake"].tolist() == pytest.approx([0.4, 0.2])


def test_a_file_of_comments_only_is_refused(tmp_path):
    assert "only comment lines" in error_of(write(tmp_path / "c.csv", "# nothing yet\n# still nothing\n"))


def test_per_batch_rows_are_averaged_per_epoch_and_a_blow_up_kept(tmp_path):
    text = ("epoch,batch,d_loss,g_loss\n0,0,1,2\n0,1,3,4\n1,0,5,6\n1,1,7,8\n2,0,1,1\n2,1,nan,inf\n"
            "1,0,50,60\n")  # the last line: a resumed run logging epoch 1 again
    frame = read_run(write(tmp_path / "b.csv", text)).frame
    assert frame["epoch"].tolist() == [0, 1, 2]
    assert frame["d_loss"].tolist()[:2] == [2.0, 50.0] and frame["g_loss"].tolist()[:2] == [3.0, 60.0]
    assert math.isnan(frame["d_loss"][2]) and frame["g_loss"][2] == math.inf


def test_json_lines_and_json_arrays(tmp_path):
    lines = "".join(f'{{"epoch": {e}, "loss_D": {0.5 + e}, "loss_G": {1.5 + e}, "note": "x"}}\n' for e in range(3))
    log = read_run(write(tmp_path / "log.jsonl", lines))
    assert log.format == "json" and log.frame["d_loss"].tolist() == [0.5, 1.5, 2.5]
    array = '[{"step": 0, "D": -1.0, "G": 0.2}, {"step": 1, "D": -2.0, "G": 0.3}]'
    log = read_run(write(tmp_path / "log.json", array))
    assert log.frame["epoch"].tolist() == [0, 1] and log.frame["d_loss"].tolist() == [-1.0, -2.0]
    assert "no loss fields" in error_of(write(tmp_path / "other.jsonl", '{"epoch": 0, "acc": 0.5}\n'))


def test_lightning_metrics_prefer_the_epoch_value(tmp_path):
    text = ("d_loss_step,epoch,g_loss_step,step,d_loss_epoch,g_loss_epoch\n"
            "9,0,9,9,,\n,0,,9,1.0,2.0\n9,1,9,19,,\n,1,,19,3.0,4.0\n")
    frame = read_run(write(tmp_path / "metrics.csv", text)).frame
    assert frame["d_loss"].tolist() == [1.0, 3.0] and frame["g_loss"].tolist() == [2.0, 4.0]


def test_discriminator_terms_without_a_total_are_added(tmp_path):
    frame = read_run(write(tmp_path / "s.csv", "epoch,errD_real,errD_fake,errG\n0,0.3,0.4,0.7\n")).frame
    assert frame["d_loss"].tolist() == pytest.approx([0.7])


@pytest.mark.parametrize("header", ["epoch,D,G", "epoch,train/d_loss,train/g_loss", "epoch,avg_loss_D,avg_loss_G",
                                    "Epoch,Critic,Generator", "iteration,disc_cost,gen_cost"])
def test_more_column_spellings(tmp_path, header):
    log = read_run(write(tmp_path / "l.csv", header + "\n0,-1,0.5\n1,-2,0.6\n"))
    assert list(log.frame.columns)[:3] == ["epoch", "d_loss", "g_loss"]


def test_keras_fit_style_lines_are_printed_values_not_a_header(tmp_path):
    text = "".join(f"Epoch {e}/3 - 2s - d_loss: 0.6{e} - g_loss: 1.2 - d_acc: 0.71\n" for e in (1, 2, 3))
    log = read_run(write(tmp_path / "fit.log", text))
    assert log.format == "printed" and log.frame["d_loss"].tolist() == pytest.approx([0.61, 0.62, 0.63])


def test_a_wgan_log_of_the_w_estimate_only_reads_its_critic_loss_from_it(tmp_path):
    log = read_run(write(tmp_path / "w.csv", "epoch,Wasserstein_D,loss_G\n0,1.5,0.2\n1,2.0,0.3\n"))
    assert log.family == "wgan" and log.frame["d_loss"].tolist() == [-1.5, -2.0]


def test_a_log_numbered_by_iteration_says_so(tmp_path):
    assert read_run(write(tmp_path / "i.csv", "iteration,d_loss,g_loss\n0,1,1\n1,2,2\n")).unit == "iteration"
    assert read_run(write(tmp_path / "e.csv", "epoch,step,d_loss,g_loss\n0,0,1,1\n1,9,2,2\n")).unit == "epoch"


@pytest.mark.parametrize(("line", "d_acc"), [
    ("{e} [D loss: 0.6{e}, acc.: 5{e}%] [G loss: 0.7{e}]", [0.50, 0.51, 0.52]),  # Keras-GAN's DCGAN: a percent
    ("{e} [D loss: 0.6{e}, acc.: 5{e}.00%, op_acc: 12.50%] [G loss: 0.7{e}]", [0.50, 0.51, 0.52]),  # its ACGAN
    ("{e} [D loss: 0.6{e}, acc: 0.5{e}] [G loss: 0.7{e}]", [0.50, 0.51, 0.52]),  # a fraction
    ("{e} [D loss: 0.6{e}0000] [G loss: 0.7{e}0000]", None),  # its WGAN: no accuracy
])
def test_keras_gan_print_lines(tmp_path, line, d_acc):
    text = "Using TensorFlow backend.\n" + "".join(line.format(e=e) + "\n" for e in range(3))
    log = read_run(write(tmp_path / "keras.log", text))
    assert log.format == "printed" and log.frame["epoch"].tolist() == [0, 1, 2]
    assert log.frame["d_loss"].tolist() == pytest.approx([0.60, 0.61, 0.62])
    assert log.frame["g_loss"].tolist() == pytest.approx([0.70, 0.71, 0.72])
    if d_acc is None:
        assert "d_acc" not in log.frame
    else:
        assert log.frame["d_acc"].tolist() == pytest.approx(d_acc)


@pytest.mark.parametrize("comments", ["# lr 2e-4, batch 64\n", "# lr 2e-4\n\n# seed 3\n"])
def test_a_csv_that_starts_with_comment_lines(tmp_path, comments):
    log = read_run(write(tmp_path / "losses.csv", comments + "epoch,d_loss,g_loss\n0,0.7,0.7\n1,0.6,0.8\n"))
    assert log.frame["epoch"].tolist() == [0, 1] and log.frame["d_loss"].tolist() == [0.7, 0.6]


def test_a_header_written_as_a_comment_by_numpy_savetxt_is_the_header(tmp_path):
    log = read_run(write(tmp_path / "np.csv", "# epoch,d_loss,g_loss\n0,0.7,0.7\n1,0.6,0.8\n"))
    assert log.frame["g_loss"].tolist() == [0.7, 0.8]
    log = read_run(write(tmp_path / "c.csv", "# run 3\nepoch,d_loss,g_loss\n0,0.7,0.7\n"))  # a plain comment stays one
    assert log.frame["d_loss"].tolist() == [0.7]


def test_keras_gan_lines_count_steps_and_scale_every_accuracy(tmp_path):
    text = ("0 [D loss: 0.69, acc.: 50.00%, op_acc: 50.00%] [G loss: 0.70]\n"
            "1 [D loss: 0.68, acc.: 51%, op_acc: 40%] [G loss: 0.71]\n")
    log = read_run(write(tmp_path / "acgan.txt", text))
    assert log.unit == "iteration" and log.frame["op_acc"].tolist() == pytest.approx([0.5, 0.4])
