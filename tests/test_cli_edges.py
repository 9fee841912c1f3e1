"""The command line's edges (issue 18): arguments checked before any work, truthful output,
files written with the user's umask, --version, help built from the name tables."""

import json
import os
import re

import numpy as np
import pytest

import steepest
from steepest.cli import main
from steepest.models.backend import DEVICES
from steepest.models.optimizers import OPTIMIZERS
from steepest.models.schedules import SCHEDULES
from steepest.models.tables import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS

# A tiny run: 100 training images, 4 hidden units, the CPU.
TINY = ["--train-samples", "100", "--sizes", "784-4-10", "--device", "cpu"]


def cli(*args):
    """main(["train", ...]) in-process; argparse's exits become their status."""
    try:
        return main(["train", *map(str, args)])
    except SystemExit as exit_:
        return exit_.code


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if the CLI loads MNIST: the arguments should be refused before that."""
    def load_mnist(*args, **kwargs):
        raise AssertionError("load_mnist was called: the error came too late")

    monkeypatch.setattr(steepest, "load_mnist", load_mnist, raising=False)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def checkpoint3(tmp_path_factory):
    """A checkpoint of three epochs, trained once for the module's resume tests."""
    path = tmp_path_factory.mktemp("ck") / "ck3.npz"
    assert cli(*TINY, "--epochs", "3", "--quiet", "--save", path) == 0
    return path


# ------------------------------------------------------------------ 1: every argument checked
@pytest.mark.parametrize("flag, value", [
    ("--epochs", "-2"), ("--epochs", "0"), ("--epochs", "1.5"),
    ("--train-samples", "0"), ("--train-samples", "-5"),
    ("--seed", "-1"), ("--batch-size", "0"), ("--batch-size", "-3"),
    ("--learning-rate", "-1"), ("--learning-rate", "0"), ("--lr", "nan"), ("--lr", "inf"),
    ("--sizes", "784"), ("--sizes", "784-0-10"), ("--sizes", "784--10"),
    ("--device", "gpu"), ("--activation", "softmax"), ("--activation", "swish"),
    ("--output", "swish"), ("--loss", "hinge"), ("--optimizer", "lbfgs"),
])
def test_a_nonsensical_argument_is_a_usage_error_naming_it_before_any_work(
        flag, value, no_data, capsys):
    assert cli(*TINY, flag, value) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err or f"/{flag}" in err, err  # argparse's "--learning-rate/--lr"
    assert repr(value) in err, err


@pytest.mark.parametrize("flag, value, named", [
    ("--epochs", "-1", "--epochs"), ("--learning-rates", "0.1,-1", "--learning-rates/--lr"),
    ("--lr", "nan", "--learning-rates/--lr"),
])
def test_descend_refuses_nonsensical_arguments_naming_them(flag, value, named, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["descend", "--no-plot", flag, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {named}: " in err and repr(value) in err, err


def test_a_loss_and_output_that_cannot_pair_are_refused_before_any_work(no_data, capsys):
    assert cli(*TINY, "--loss", "cross_entropy", "--output", "sigmoid") == 2
    err = capsys.readouterr().err
    assert "--loss cross_entropy" in err and "--output sigmoid" in err and "softmax" in err


def test_too_many_train_samples_names_the_flag(capsys):
    assert cli("--train-samples", "60001", "--epochs", "1", "--device", "cpu") == 2
    assert "--train-samples must be in 1..60000; got 60001" in capsys.readouterr().err


# ------------------------------------------------------------------ 2: paths checked first
@pytest.mark.parametrize("flag", ["--save", "--checkpoint", "--metrics-json"])
def test_an_output_in_a_missing_directory_is_refused_before_any_work(flag, in_tmp, no_data,
                                                                      capsys):
    assert cli(*TINY, "--epochs", "1", flag, "missing/out.file") == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "'missing/out.file'" in err and "does not exist" in err
    assert os.listdir(in_tmp) == []


@pytest.mark.parametrize("flag", ["--save", "--checkpoint", "--metrics-json"])
def test_an_output_that_is_a_directory_is_refused_before_any_work(flag, in_tmp, no_data,
                                                                   capsys):
    (in_tmp / "taken").mkdir()
    assert cli(*TINY, "--epochs", "1", flag, "taken") == 2
    assert f"argument {flag}: 'taken' is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--resume", "missing.npz"),
                                         ("--data-dir", "no-such-dir")])
def test_a_missing_input_is_refused_before_any_work(flag, value, in_tmp, no_data, capsys):
    assert cli(*TINY, "--epochs", "1", flag, value) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and repr(value) in err


def test_a_bad_checkpoint_is_refused_before_the_data_is_loaded(in_tmp, no_data, capsys):
    (in_tmp / "junk.npz").write_bytes(b"not a checkpoint")
    assert cli("--resume", "junk.npz", "--epochs", "2") == 2
    assert "not a readable steepest checkpoint" in capsys.readouterr().err


# ------------------------------------------------------------------ 3: resume counts truthfully
def test_resuming_a_checkpoint_past_epochs_says_it_trains_nothing(checkpoint3, capsys):
    assert cli("--resume", checkpoint3, "--train-samples", "100", "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert ("nothing to train: the checkpoint has trained 3 epochs already and --epochs 1 asks "
            "for 1 in all") in out
    assert "final test accuracy" in out and "after 3 epochs (none in this run" in out
    assert not re.search(r"^epoch ", out, re.M)


def test_resuming_says_how_many_epochs_this_run_trained(checkpoint3, tmp_path, capsys):
    out_path = tmp_path / "ck5.npz"
    assert cli("--resume", checkpoint3, "--train-samples", "100", "--epochs", "5",
               "--save", out_path) == 0
    out = capsys.readouterr().out
    assert "after 5 epochs (2 in this run" in out
    assert steepest.Network.load(out_path).epochs_trained == 5


def test_one_epoch_is_singular(capsys):
    assert cli(*TINY, "--epochs", "1") == 0
    assert "after 1 epoch (" in capsys.readouterr().out


# ------------------------------------------------------------------ 4: architecture vs resume
@pytest.mark.parametrize("flag, value, stored", [
    ("--sizes", "784-5-10", "784-4-10"), ("--activation", "relu", "sigmoid"),
    ("--output", "softmax", "sigmoid"), ("--loss", "mae", "mse"),
])
def test_every_architecture_flag_that_contradicts_the_checkpoint_is_refused(
        flag, value, stored, checkpoint3, no_data, capsys):
    assert cli("--resume", checkpoint3, "--epochs", "4", flag, value) == 2
    assert f"{flag} {value} (the checkpoint has {stored})" in capsys.readouterr().err


def test_architecture_flags_equal_to_the_checkpoint_are_no_conflict(checkpoint3, capsys):
    assert cli("--resume", checkpoint3, "--train-samples", "100", "--epochs", "3",
               "--sizes", "784-4-10", "--activation", "sigmoid", "--output", "sigmoid",
               "--loss", "mse") == 0


# ------------------------------------------------------------------ 5: --optimizer end to end
def test_optimizer_trains_end_to_end_and_is_kept(in_tmp, capsys):
    assert cli(*TINY, "--epochs", "1", "--optimizer", "adam", "--lr", "0.01",
               "--save", "net.npz", "--metrics-json", "m.json") == 0
    assert "adam at learning rate 0.01" in capsys.readouterr().out
    assert json.loads((in_tmp / "m.json").read_text())["optimizer"] == "adam"
    net = steepest.Network.load(in_tmp / "net.npz")
    assert net._train_config["optimizer"]["name"] == "adam"


# ------------------------------------------------------------------ 6: --quiet
def test_quiet_hides_progress_but_not_the_final_accuracy(in_tmp, capsys):
    assert cli(*TINY, "--epochs", "2", "--quiet", "--save", "net.npz") == 0
    out = capsys.readouterr().out
    assert re.search(r"^final test accuracy \d+\.\d\d% after 2 epochs", out, re.M), out
    assert not re.search(r"^epoch ", out, re.M)


# ------------------------------------------------------------------ 7: help from the tables
@pytest.mark.parametrize("flag, names", [
    ("--loss", LOSSES), ("--activation", HIDDEN_ACTIVATIONS), ("--output", OUTPUT_ACTIVATIONS),
    ("--optimizer", OPTIMIZERS), ("--device", DEVICES), ("--lr-schedule", SCHEDULES),
])
def test_help_lists_every_name_the_library_has(flag, names, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    # the option's entry: from "--flag" to the next option
    entry = re.search(rf"(?:^| ){re.escape(flag)}( [^-].*?)(?= -[-a-z])", text).group(1)
    missing = [name for name in names if name not in entry]
    assert not missing, f"{flag} help misses {missing}: {entry}"


def test_help_shows_which_output_each_loss_takes_by_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for loss, spec in LOSSES.items():
        assert f"{spec.default_output} for {loss}" in text


# ------------------------------------------------------------------ 8: --version
def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"steepest {steepest.__version__}\n"


# ------------------------------------------------------------------ 9: file modes
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_network_save_and_fit_checkpoints_take_the_umask(tmp_path, umask_022):
    net = steepest.Network([3, 2], seed=0, device="cpu")
    net.save(tmp_path / "net.npz")
    X, y = np.eye(4, 3, dtype=np.float32), np.array([0, 1, 0, 1])
    net.fit(X, y, epochs=1, checkpoint=tmp_path / "ck.npz")
    for name in ("net.npz", "ck.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    os.umask(0o077)
    net.save(tmp_path / "private.npz")
    assert (tmp_path / "private.npz").stat().st_mode & 0o777 == 0o600


def test_every_file_the_cli_writes_takes_the_umask(in_tmp, umask_022):
    assert cli(*TINY, "--epochs", "1", "--quiet", "--save", "net.npz", "--checkpoint", "ck.npz",
               "--metrics-json", "m.json") == 0
    assert sorted(os.listdir(in_tmp)) == ["ck.npz", "m.json", "net.npz"]  # no temporaries
    for name in ("net.npz", "ck.npz", "m.json"):
        assert (in_tmp / name).stat().st_mode & 0o777 == 0o644, name


def _interrupt_in_epoch(monkeypatch, n):
    """Ctrl-C while the n-th epoch trains (counted across fit calls)."""
    train_epoch, calls = steepest.Network._train_epoch, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(steepest.Network, "_train_epoch", interrupted)


def test_ctrl_c_saves_the_last_completed_epoch_with_the_umask(in_tmp, umask_022, monkeypatch,
                                                              capsys):
    _interrupt_in_epoch(monkeypatch, 2)
    assert cli(*TINY, "--epochs", "3", "--quiet", "--save", "net.npz") == 130
    assert "saved the network after epoch 1 to net.npz" in capsys.readouterr().err
    assert steepest.Network.load(in_tmp / "net.npz").epochs_trained == 1
    assert (in_tmp / "net.npz").stat().st_mode & 0o777 == 0o644
    assert os.listdir(in_tmp) == ["net.npz"]


# ------------------------------------------------------------------ 10: one fit call (issue 14)
@pytest.fixture
def fit_calls(monkeypatch):
    """Network.fit, counted: the epochs each call asked for."""
    fit, calls = steepest.Network.fit, []

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("epochs", args[2] if len(args) > 2 else 1))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(steepest.Network, "fit", counted)
    return calls


def _epoch_lines(out):
    return re.findall(r"^epoch +\d+/\d+: loss \d\.\d{4}  test accuracy \d+\.\d\d%  "
                      r"[\d,]+ samples/s$", out, re.M)


def test_train_fits_all_epochs_in_one_call_with_a_line_and_a_row_per_epoch(in_tmp, fit_calls,
                                                                          capsys):
    assert cli(*TINY, "--epochs", "3", "--metrics-json", "m.json", "--save", "net.npz",
               "--checkpoint", "ck.npz") == 0
    assert fit_calls == [3]
    lines = _epoch_lines(capsys.readouterr().out)
    assert [line[:11] for line in lines] == ["epoch   1/3", "epoch   2/3", "epoch   3/3"]
    rows = json.loads((in_tmp / "m.json").read_text())["epochs"]
    net = steepest.Network.load(in_tmp / "net.npz")
    history = net.history
    assert [row["epoch"] for row in rows] == [1, 2, 3] == history["epoch"]
    for key, name in [("loss", "loss"), ("test_loss", "val_loss"),
                      ("test_accuracy", "val_accuracy"), ("learning_rate", "learning_rate"),
                      ("samples_per_s", "samples_per_s"), ("seconds", "seconds")]:
        assert [row[key] for row in rows] == history[name], key
    for line, row in zip(lines, rows):
        assert f"loss {row['loss']:.4f}  test accuracy {row['test_accuracy']:.2%}" in line
    # fit's own checkpoint holds the last epoch
    assert np.array_equal(steepest.Network.load(in_tmp / "ck.npz")._params, net._params)


def test_one_fit_call_ends_with_the_weights_of_one_fit_per_epoch(in_tmp, fit_calls):
    assert cli(*TINY, "--epochs", "3", "--quiet", "--save", "cli.npz") == 0
    net = steepest.Network([784, 4, 10], seed=0, device="cpu")
    X, y, Xt, yt = steepest.load_mnist()
    for _ in range(3):
        net.fit(X[:100], y[:100], epochs=1, batch_size=10, learning_rate=3.0,
                validation_data=(Xt, yt))
    assert np.array_equal(steepest.Network.load(in_tmp / "cli.npz")._params, net._params)
    assert fit_calls == [3, 1, 1, 1]


def test_resume_fits_the_remaining_epochs_in_one_call(checkpoint3, fit_calls, capsys):
    assert cli("--resume", checkpoint3, "--train-samples", "100", "--epochs", "5") == 0
    assert fit_calls == [2]
    assert [line[:11] for line in _epoch_lines(capsys.readouterr().out)] == [
        "epoch   4/5", "epoch   5/5"]
    assert cli("--resume", checkpoint3, "--train-samples", "100", "--epochs", "3") == 0
    assert fit_calls == [2]  # nothing to train: no fit call at all


def test_ctrl_c_in_one_fit_call_keeps_the_lines_and_saves_the_completed_epochs(
        in_tmp, fit_calls, monkeypatch, capsys):
    assert cli(*TINY, "--epochs", "2", "--quiet", "--save", "two.npz") == 0
    _interrupt_in_epoch(monkeypatch, 3)
    assert cli(*TINY, "--epochs", "4", "--checkpoint", "ck.npz") == 130
    assert fit_calls == [2, 4]
    captured = capsys.readouterr()
    assert [line[:11] for line in _epoch_lines(captured.out)] == ["epoch   1/4", "epoch   2/4"]
    assert ("interrupted: saved the network after epoch 2 to ck.npz; continue with --resume "
            "ck.npz") in captured.err
    saved = steepest.Network.load(in_tmp / "ck.npz")
    assert saved.epochs_trained == 2
    assert np.array_equal(saved._params, steepest.Network.load(in_tmp / "two.npz")._params)
