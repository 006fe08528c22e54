"""Replaying a finished ``reproduce table6`` run, made here by the real command at tiny size."""

import csv
import json
import time

import matplotlib.pyplot as plt
import pytest

from resnet_tf.cli import main
from resnet_tf.reproduce import replay

TINY = ["--dataset", "digits", "--depths", "8", "14", "--plain", "--epochs", "2",
        "--steps-per-epoch", "2", "--batch-size", "32", "--width", "4", "--verbose", "0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "table6"
    assert main(["reproduce", "table6", *TINY, "--out", str(out)]) == 0
    return out


def test_replay_reads_what_the_command_wrote(run_dir):
    started = time.perf_counter()
    run = replay.load_run(run_dir)
    loaded = time.perf_counter() - started
    assert loaded < 2.0  # "in seconds": reading files, no training
    with (run_dir / "table6.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert run.errors() == {r["network"]: float(r["test_error"]) for r in rows}
    assert set(run.errors()) == {"ResNet-8", "ResNet-14", "plain-8", "plain-14"}
    stored = json.loads((run_dir / "figures.json").read_text())["curves"]
    assert run.curves == stored
    assert run.final_training_errors()["plain-14"] == stored["plain14"]["train_error"][-1]
    assert run.paper["table6_error"]["56"] == 6.97
    assert run.device == "cpu" and run.precision == "float32"


def test_replay_is_labelled_and_rehearsals_say_so(run_dir):
    run = replay.load_run(run_dir)
    assert run.rehearsal
    assert run.label.startswith(f"replayed from {run_dir}") and "rehearsal" in run.label
    assert run.table_frame().attrs["caption"] == run.label
    assert list(run.table_frame().index) == ["ResNet-8", "ResNet-14", "plain-8", "plain-14"]
    fig = run.plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 2 and all("replayed" in t for t in titles)
    assert "replayed from" in fig.get_suptitle()
    plt.close(fig)
    paper_scale = replay.Replay(run_dir, [], {}, {}, "", {"dataset": "cifar10"})
    assert not paper_scale.rehearsal and "the paper's recipe" in paper_scale.label


def test_run_directory_from_the_environment_or_its_parent(run_dir, monkeypatch):
    monkeypatch.delenv(replay.RUNS_ENV, raising=False)
    assert replay.load_run() is None
    monkeypatch.setenv(replay.RUNS_ENV, str(run_dir.parent))  # the folder holding table6/
    assert replay.find_run() == run_dir
    assert replay.load_run().errors() == replay.load_run(run_dir).errors()


def test_missing_or_unfinished_runs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished reproduce table6 run"):
        replay.load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"config": {}}')
    with pytest.raises(replay.RunNotFinishedError, match="--resume"):
        replay.load_run(tmp_path)
    with pytest.raises(ValueError, match="resnetN or plainN"):
        replay.network_label("vgg16")
