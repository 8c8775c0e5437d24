"""`gantune ui` and `gantune report` tested as a person would: a small real sweep, the MLflow UI started by gantune,
and headless Chromium (Debian's chromium and chromedriver, driven by Selenium) reading the experiment, a trial, the
compare view and the HTML report. Screenshots go to tmp_path/screens (and to $GANTUNE_SCREENSHOTS when set)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

# Their own xdist group: one small sweep (module-scoped) and a browser, beside the serial Ray group.
# Debian's chromium and chromium-driver: `make test` installs them.

DIVERGES = '{"learning_rate_g": 0.5, "learning_rate_d": 0.5, "lambda_gp": 0.0}'
SPACE = {"LEARNING_RATE_G": {"low": 1e-4, "high": 1.0, "log": True},
         "LEARNING_RATE_D": {"low": 1e-4, "high": 1.0, "log": True}, "LAMBDA_GP": {"low": 0.0, "high": 10.0}}
WAIT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(profile: Path):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--window-size=1500,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))


def wait_for_text(driver, *words: str) -> str:
    from selenium.webdriver.common.by import By

    deadline, text = time.monotonic() + WAIT_S, ""
    while time.monotonic() < deadline:
        text = driver.find_element(By.TAG_NAME, "body").text
        if all(w in text for w in words):
            return text
        time.sleep(0.5)
    raise AssertionError(f"page never showed {words}; it showed: {text[:1500]}")


def shoot(driver, screens: Path, name: str) -> None:
    screens.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(screens / name))
    if os.environ.get("GANTUNE_SCREENSHOTS"):
        Path(os.environ["GANTUNE_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(screens / name, Path(os.environ["GANTUNE_SCREENSHOTS"]) / name)


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """A real 3-trial toy2d sweep (one diverges) in its own folder and MLflow store: (folder, uri, experiment, runs)."""
    folder = tmp_path_factory.mktemp("uisweep")
    uri = f"sqlite:///{folder}/mlflow.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": uri}
    (folder / "space.json").write_text(json.dumps(SPACE))
    done = subprocess.run([sys.executable, "-m", "tuner.cli", "sweep", "toy2d", "--trials", "3", "--epochs", "6",
                           "--set", "DATASET_SIZE=500", "--set", "QUALITY_EVERY=3", "--no-asha", "--space",
                           "space.json", "--enqueue", DIVERGES, "--name", "uisweep"], capture_output=True, text=True,
                          timeout=400, env=env, cwd=folder)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("gantune")
    runs = client.search_runs([exp.experiment_id], "tags.`gantune.sweep` = 'uisweep'")
    return folder, uri, exp.experiment_id, {r.info.run_name: r for r in runs}


@pytest.fixture
def ui(small_sweep):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tuner.cli", "ui", "--port", str(port), "--tracking-uri",
                               small_sweep[1]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    line = server.stdout.readline()  # printed once the server answers /health
    assert f"http://127.0.0.1:{port}" in line, line + server.stderr.read()
    yield server, f"http://127.0.0.1:{port}"
    if server.poll() is None:
        server.terminate()  # gantune ui stops its server on SIGTERM too
        server.wait(30)


def test_the_ui_lists_trials_with_tags_and_params_and_compares_two(tmp_path, small_sweep, ui):
    from selenium.webdriver.common.by import By

    _, _, experiment, runs = small_sweep
    server, url = ui
    trials = {name: r for name, r in runs.items() if "gantune.trial_id" in r.data.tags}
    stopped = next(r for r in trials.values() if r.data.tags["gantune.status"] == "diverged")
    healthy = next(r for r in trials.values() if r.info.run_name.endswith("seed config"))  # the trial to compare
    screens = tmp_path / "screens"
    driver = browser(tmp_path / "chrome")
    try:
        # the experiment: the sweep's parent run, expanded to its trials
        driver.get(f"{url}/#/experiments/{experiment}/runs")
        wait_for_text(driver, "uisweep")
        link = driver.find_element(By.XPATH, "//a[normalize-space(.)='uisweep']")
        cell = link.find_element(By.XPATH, "./ancestor::div[@role='gridcell'][1]")
        cell.find_element(By.TAG_NAME, "button").click()  # expand the parent: its children are the trials
        wait_for_text(driver, *trials)
        shoot(driver, screens, "experiment.png")

        # a stopped trial's page: its status tag, stop reason and every hyperparameter
        driver.get(f"{url}/#/experiments/{experiment}/runs/{stopped.info.run_id}")
        text = wait_for_text(driver, stopped.info.run_name, "gantune.status", "diverged", "gantune.stop_reason")
        assert "LEARNING_RATE_G" in text and "LAMBDA_GP" in text
        shoot(driver, screens, "trial.png")

        # the compare view of two trials: both names and the parameters side by side
        ids = json.dumps([stopped.info.run_id, healthy.info.run_id])
        driver.get(f"{url}/#/compare-runs?runs={ids}&experiments={json.dumps([experiment])}")
        text = wait_for_text(driver, stopped.info.run_name, healthy.info.run_name, "LEARNING_RATE_G")
        assert "0.5" in text  # the diverging trial's learning rate is shown
        shoot(driver, screens, "compare.png")
    finally:
        driver.quit()
    server.send_signal(signal.SIGINT)  # Ctrl-C stops it cleanly (its server gets 10 s, then SIGKILL)
    out, _ = server.communicate(timeout=60)  # generous: a CI run with Ray busy on the other core once took over 30 s
    assert server.returncode == 0 and "stopped" in out
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()


def test_the_printed_link_opens_on_the_sweeps_trials_with_the_columns_that_matter(tmp_path, small_sweep, ui):

    _, _, _, runs = small_sweep
    server, url = ui
    links = dict(server.stdout.readline().strip().split(": ", 1) for _ in range(2))
    assert list(links) == ["sweep uisweep's trials by quality", "its best 2 compared"], links
    trials = {r.info.run_name: r for r in runs.values() if "gantune.trial_id" in r.data.tags}
    by_quality = sorted((r for r in trials.values() if "quality" in r.data.metrics),
                        key=lambda r: -r.data.metrics["quality"])
    driver = browser(tmp_path / "chrome")
    driver.set_window_size(2400, 1000)  # MLflow's Assistant opens on a first visit and takes a third of the width
    try:
        driver.get(links["sweep uisweep's trials by quality"])
        text = wait_for_text(driver, *trials, "quality", "gantune.status", "gantune.diagnosis",
                             "gantune.stop_reason", "LEARNING_RATE_G", "LAMBDA_GP")
        shoot(driver, tmp_path / "screens", "landing.png")
        assert "diverged at epoch 0" in text and "ran all 6 epochs" in text  # the stop reasons
        assert "Model registry" in text and "Playground" not in text  # MLflow's model-training side bar, not GenAI's
        # flat: every trial a row of its own, no sweep parent row to expand; the best quality first
        assert "\nuisweep\n" not in text and f"{len(trials)} matching runs" in text
        assert text.index(by_quality[0].info.run_name) < text.index(by_quality[1].info.run_name)

        driver.get(links["its best 2 compared"])
        wait_for_text(driver, by_quality[0].info.run_name, by_quality[1].info.run_name, "LEARNING_RATE_G")
        shoot(driver, tmp_path / "screens", "landing_compare.png")
    finally:
        driver.quit()


def test_ui_names_the_sweeps_there_are_when_asked_for_another(small_sweep, capsys):
    from tuner.cli import main

    assert main(["ui", "--tracking-uri", small_sweep[1], "--sweep", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--sweep nope: no such sweep" in err and err.strip().endswith("its sweeps: uisweep")


def test_the_html_report_opens_from_disk_with_its_images(tmp_path, small_sweep):
    from tuner.cli import main

    assert main(["report", "uisweep", "--tracking-uri", small_sweep[1], "--out", "report/sweep.html"]) == 0
    page = (tmp_path / "report" / "sweep.html").read_text()
    assert "Stopped trials" in page and "diverged" in page and "Parameter importances" in page
    assert "http" not in page.split("<body>")[1]  # nothing fetched from a server
    driver = browser(tmp_path / "chrome")
    try:
        driver.get((tmp_path / "report" / "sweep.html").as_uri())
        wait_for_text(driver, "uisweep", "Best trials")
        loaded = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        assert len(loaded) >= 6 and all(loaded)  # loss curves and sample grids of every trial
        shoot(driver, tmp_path / "screens", "report.png")
    finally:
        driver.quit()


def test_bad_ui_and_report_input_gets_one_clear_line(tmp_path, capsys):
    from tuner.cli import main

    assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert main(["report", "--tracking-uri", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert main(["report", "--out", "report.pdf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "no MLflow store" in err[0] and "no MLflow store" in err[1] and ".html" in err[2]


def test_ui_on_a_port_already_taken_says_so_in_one_line(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()  # a real store, created
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "tuner.cli", "ui", "--port", str(port), "--tracking-uri", uri],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and not result.stdout, result.stdout + result.stderr
    assert result.stderr.strip() == f"gantune: error: port {port} on 127.0.0.1 is in use: choose another with --port"


def test_ui_stops_its_server_on_sigterm(small_sweep):
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "tuner.cli", "ui", "--port", str(port), "--tracking-uri",
                           small_sweep[1]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert f"http://127.0.0.1:{port}" in ui.stdout.readline()
    ui.terminate()
    assert ui.wait(30) == 0
    time.sleep(1)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    left = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout
    assert not left.strip(), left  # no MLflow server or worker outlives gantune ui
