"""python -m resnet_tf: info and train."""

import json
import subprocess
import sys

from resnet_tf.cli import build_parser, main


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] in ("quick", "full")


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_parser_lists_train():
    assert "train" in build_parser().format_help()


def test_train_demo_end_to_end(tmp_path):
    saved = tmp_path / "digits.keras"
    run = subprocess.run(
        [sys.executable, "-m", "resnet_tf", "train", "--model", "cifar_resnet8", "--width", "8",
         "--epochs", "2", "--save", str(saved)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "test accuracy" in run.stdout and saved.exists()


def test_train_unknown_model_is_explained():
    run = subprocess.run(
        [sys.executable, "-m", "resnet_tf", "train", "--model", "vgg16", "--epochs", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode != 0 and "allowed: cifar_resnet<6n+2>" in run.stderr
