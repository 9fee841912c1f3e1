"""Command line: ``python -m steepest train`` trains an MLP on MNIST and reports per epoch.

The defaults are Nielsen's chapter-1 setup: 784-30-10, sigmoid, MSE, mini-batch 10,
learning rate 3.0, 30 epochs, trained on the 60,000 training images and tested on the 10,000
test images after every epoch.
"""

import argparse
import json
import math
import os
import sys
import time

from steepest import __version__, cli_sweep
from steepest.models.backend import DEVICES
from steepest.models.optimizers import OPTIMIZERS
from steepest.models.schedules import SCHEDULES
from steepest.models.tables import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS

# Every argument is checked by its argparse type, so a nonsensical value is a usage error
# naming the flag (exit 2) before the data is loaded, not an error after hours of training.


def _whole(minimum):
    """An argparse type: a whole number ≥ ``minimum``."""
    def whole(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number ≥ {minimum}, got {text!r}")
        return value
    return whole


def _positive_real(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _one_of(names, what):
    """An argparse type: one of ``names`` (a library table), else an error listing them."""
    def one_of(text):
        if text not in names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text!r}; expected one of {', '.join(names)}")
        return text
    return one_of


def _sizes(text):
    try:
        sizes = [int(part) for part in text.replace(",", "-").split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 784-30-10, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected two or more widths ≥ 1 like 784-30-10, got {text!r}")
    return sizes


def _batch(text):
    if text.lower() in ("full", "none"):
        return None
    try:
        return _whole(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number ≥ 1 or 'full', got {text!r}") from None


def _output_path(text):
    """A file the run will write: refused now if it cannot be written, not after training."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    directory = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"{text!r}: directory {directory} does not exist")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: directory {directory} is not writable")
    return text


def _existing_file(text):
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file {text!r}")
    return text


def _existing_directory(text):
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no such directory {text!r}")
    return text


# The training options of `train` and their values for a fresh run.  Given on the command
# line they are set explicitly; with --resume they come from the checkpoint, and a flag that
# contradicts the checkpoint is an error naming both values.
TRAIN_DEFAULTS = {"sizes": [784, 30, 10], "activation": "sigmoid", "output": None, "loss": "mse",
                  "batch_size": 10, "learning_rate": 3.0, "optimizer": "sgd",
                  "lr_schedule": None, "seed": 0, "shuffle": True}
FLAGS = {"sizes": "--sizes", "activation": "--activation", "output": "--output",
         "loss": "--loss", "batch_size": "--batch-size", "learning_rate": "--learning-rate",
         "optimizer": "--optimizer", "lr_schedule": "--lr-schedule", "seed": "--seed",
         "shuffle": "--no-shuffle"}


def _schedule(text):
    """'step' or 'step:step_size=2,factor=0.5' -> a schedule config {"name": ..., ...}."""
    from steepest.models.schedules import schedule_from_config

    name, _, rest = text.partition(":")
    config = {"name": name.strip()}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        try:
            number = value.strip()
            config[key.strip()] = int(number) if number.lstrip("-").isdigit() else float(number)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected NAME[:key=value,...], got {text!r}") from None
        if not eq:
            raise argparse.ArgumentTypeError(f"expected NAME[:key=value,...], got {text!r}")
    try:
        return schedule_from_config(config).to_config()
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"bad --lr-schedule {text!r}: {exc}") from None


# The help's lists of names are built from the library's tables, so they cannot drift.
def _names(table):
    return ", ".join(table)


def _output_help():
    defaults = ", ".join(f"{spec.default_output} for {loss}" for loss, spec in LOSSES.items())
    only = "; ".join(f"{loss} takes only {' or '.join(spec.outputs)}"
                     for loss, spec in LOSSES.items()
                     if len(spec.outputs) < len(OUTPUT_ACTIVATIONS))
    return (f"output activation: {_names(OUTPUT_ACTIVATIONS)}; by default the one that fits the "
            f"loss ({defaults}); {only}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m steepest",
        description="Train neural networks by gradient descent with Numba-compiled kernels.")
    parser.add_argument("--version", action="version", version=f"steepest {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(commands)
    _add_descend_parser(commands)
    cli_sweep.add_parser(commands)
    return parser


def _add_train_parser(commands):
    train = commands.add_parser(
        "train", help="train an MLP on MNIST (Nielsen's chapter-1 defaults)",
        description="Train an MLP on MNIST and print test accuracy and samples/s per epoch. "
                    "With --resume, the architecture and training options come from the "
                    "checkpoint; a flag that contradicts it is an error.")
    # default=None on the training options: "not given", so --resume can tell a flag that
    # contradicts the checkpoint from one left alone
    train.add_argument("--sizes", type=_sizes, default=None, metavar="784-30-10",
                       help="layer widths, input first, joined by '-' (default: 784-30-10)")
    train.add_argument("--activation", type=_one_of(HIDDEN_ACTIVATIONS, "activation"),
                       default=None,
                       help=f"hidden activation: {_names(HIDDEN_ACTIVATIONS)} (default: sigmoid)")
    train.add_argument("--output", type=_one_of(OUTPUT_ACTIVATIONS, "output activation"),
                       default=None, help=_output_help())
    train.add_argument("--loss", type=_one_of(LOSSES, "loss"), default=None,
                       help=f"{_names(LOSSES)} (default: mse)")
    train.add_argument("--epochs", type=_whole(1), default=30,
                       help="train until the network has trained this many epochs in all "
                            "(default: 30)")
    train.add_argument("--batch-size", type=_batch, default=None,
                       help="1 = per-sample SGD, 'full' = full-batch GD (default: 10)")
    train.add_argument("--learning-rate", "--lr", type=_positive_real, default=None,
                       help="the base learning rate η (default: 3.0)")
    train.add_argument("--optimizer", type=_one_of(OPTIMIZERS, "optimizer"), default=None,
                       help=f"{_names(OPTIMIZERS)} (default: sgd)")
    train.add_argument("--lr-schedule", type=_schedule, default=None,
                       metavar="NAME[:key=value,...]",
                       help=f"{_names(SCHEDULES)} (default: constant), with arguments, "
                            f"e.g. step:step_size=10,factor=0.5")
    train.add_argument("--train-samples", type=_whole(1), default=None, metavar="N",
                       help="train on the first N training images only (default: all 60,000)")
    train.add_argument("--device", type=_one_of(DEVICES, "device"), default="auto",
                       help=f"{_names(DEVICES)} (default: auto)")
    train.add_argument("--seed", type=_whole(0), default=None, help="default: 0")
    train.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                       default=None, help="train in the files' order")
    train.add_argument("--data-dir", type=_existing_directory, default=None,
                       help="directory of MNIST IDX files (default: $STEEPEST_MNIST_DIR or "
                            "the copy shipped with steepest)")
    train.add_argument("--save", type=_output_path, metavar="PATH", default=None,
                       help="save the trained network")
    train.add_argument("--checkpoint", type=_output_path, metavar="PATH", default=None,
                       help="save the network and training state after every epoch; Ctrl-C "
                            "saves the last completed epoch here (else to --save, else to "
                            "steepest-interrupted.npz)")
    train.add_argument("--resume", type=_existing_file, metavar="PATH", default=None,
                       help="continue training from a checkpoint up to --epochs in total, "
                            "with the checkpoint's architecture and training options")
    train.add_argument("--metrics-json", type=_output_path, metavar="PATH", default=None,
                       help="write per-epoch and final metrics as JSON")
    train.add_argument("--quiet", action="store_true",
                       help="no progress bar or per-epoch lines (the final accuracy still "
                            "prints)")
    train.add_argument("--distributed", action="store_true",
                       help="train on every process of an MPI job, as in mpiexec -n 4 python "
                            "-m steepest train --distributed (needs pip install "
                            "'steepest[mpi]'): each batch is split across the processes and "
                            "their gradients summed; rank 0 prints and writes the files; on "
                            "the CPU")
    train.add_argument("--sync", choices=("gradient", "average"), default=None,
                       help="with --distributed: 'gradient' (the default) splits each batch "
                            "across the processes; 'average' lets each train on its share of "
                            "the rows and averages the networks (local SGD, for small batches)")
    train.add_argument("--average-every", type=_whole(1), default=None, metavar="H",
                       help="with --sync average: samples each process trains between "
                            "averagings, a multiple of the batch size (default: at the end of "
                            "each epoch only)")


def _given(args):
    """The training options given on the command line, in TRAIN_DEFAULTS' terms."""
    given = {key: getattr(args, key) for key in TRAIN_DEFAULTS if getattr(args, key) is not None}
    if "batch_size" in given and given["batch_size"] == "full":
        given["batch_size"] = None
    return given


def _checkpoint_settings(net):
    """The training options a loaded network carries (fewer for an untrained one)."""
    settings = {"sizes": net.sizes, "activation": net.activation, "output": net.output,
                "loss": net.loss}
    if net.seed is not None:
        settings["seed"] = net.seed
    config = net._train_config
    if config is not None:
        settings.update(batch_size=config["batch_size"], shuffle=config["shuffle"],
                        learning_rate=config["optimizer"]["learning_rate"],
                        optimizer=config["optimizer"]["name"],
                        lr_schedule=config["lr_schedule"])
    return settings


def _resumed_network(args, given):
    import steepest

    net = steepest.Network.load(args.resume, device=args.device)
    stored = _checkpoint_settings(net)
    conflicts = [f"{FLAGS[key]} {_shown(given[key])} (the checkpoint has {_shown(stored[key])})"
                 for key in given if key in stored and given[key] != stored[key]]
    if conflicts:
        raise ValueError(f"--resume {args.resume}: {'; '.join(conflicts)}. Drop the flag to "
                         f"continue with the checkpoint's value, or start a new run.")
    return net, {**TRAIN_DEFAULTS, **given, **stored}


def _shown(value):
    if value is None:
        return "none"
    if isinstance(value, list):
        return "-".join(map(str, value))
    if isinstance(value, dict):
        arguments = ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return value["name"] + (f":{arguments}" if arguments else "")
    return str(value)


def _new_network(args, given):
    import steepest

    settings = {**TRAIN_DEFAULTS, **given}
    loss, output = settings["loss"], settings["output"]
    allowed = LOSSES[loss].outputs
    if output is not None and output not in allowed:
        raise ValueError(f"--loss {loss} needs --output {' or '.join(allowed)}; "
                         f"got --output {output}")
    net = steepest.Network(settings["sizes"], activation=settings["activation"], output=output,
                           loss=loss, seed=settings["seed"], device=args.device)
    return net, settings


def _mnist(args):
    import steepest

    X, y, Xt, yt = steepest.load_mnist(args.data_dir)
    if args.train_samples is not None:
        if args.train_samples > len(X):
            raise ValueError(f"--train-samples must be in 1..{len(X)}; got {args.train_samples}")
        X, y = X[:args.train_samples], y[:args.train_samples]
    return X, y, Xt, yt


def _fit_options(net, settings, resume):
    from steepest.models.schedules import schedule_from_config

    if resume and net._train_config is not None:
        return {}  # the network continues with its own optimiser, rate, schedule, batch
    schedule = settings["lr_schedule"]
    return {"batch_size": settings["batch_size"], "shuffle": settings["shuffle"],
            "learning_rate": settings["learning_rate"], "optimizer": settings["optimizer"],
            "lr_schedule": "constant" if schedule is None else schedule_from_config(schedule)}


def _epochs(n):
    return f"{n} epoch" + ("" if n == 1 else "s")


def _communicator(args):
    """MPI.COMM_WORLD with --distributed (which trains on the CPU), else None."""
    if not args.distributed:
        for flag, value in (("--sync", args.sync), ("--average-every", args.average_every)):
            if value is not None:
                raise ValueError(f"{flag} needs --distributed")
        return None
    if args.average_every is not None and args.sync != "average":
        raise ValueError("--average-every needs --sync average")
    if args.device == "cuda":
        raise ValueError("--distributed trains on the CPU only; got --device cuda")
    args.device = "cpu"  # "auto" would take a GPU where there is one
    from steepest import distributed

    try:
        return distributed.world()
    except ImportError as exc:
        raise ValueError(f"--distributed: {exc}") from None


def _sync_options(args, comm):
    """fit's sync and average_every for --distributed; nothing for one process."""
    if comm is None:
        return {}
    return {"sync": args.sync or "gradient", "average_every": args.average_every}


def _lead(args):
    """Whether this process prints and writes files: rank 0 of a --distributed job, or the
    only process."""
    if not getattr(args, "distributed", False):
        return True
    from steepest import distributed

    try:
        return distributed.world().Get_rank() == 0
    except ImportError:
        return True


def _silent(*args, **kwargs):
    pass


def train(args):
    """The `train` command.  The network comes first, so a bad checkpoint or an impossible
    architecture fails before the data is read; then one ``fit`` call for all the epochs.
    With --distributed every process runs this; rank 0 alone prints and writes files."""
    comm = _communicator(args)
    say = print if _lead(args) else _silent
    world = "" if comm is None else f", world size {comm.Get_size()}"
    sync = "" if comm is None or args.sync != "average" else \
        ", averaging every " + (f"{args.average_every} samples" if args.average_every
                                else "epoch")

    def set_up():
        given = _given(args)
        net, settings = _resumed_network(args, given) if args.resume else \
            _new_network(args, given)
        return net, settings, _mnist(args)

    if comm is None:
        net, settings, (X, y, Xt, yt) = set_up()
    else:  # a failure on one process (its data, its checkpoint) stops them all
        from steepest import distributed

        net, settings, (X, y, Xt, yt) = distributed.agree(comm, set_up)
        distributed.limit_threads(comm)  # the final evaluation too, not only fit
    options = _fit_options(net, settings, args.resume)
    schedule = settings["lr_schedule"]
    say(f"{net}: {net.n_parameters:,} parameters, {len(X):,} training samples, "
        f"batch size {settings['batch_size'] or 'full'}, {settings['optimizer']} at learning "
        f"rate {settings['learning_rate']}"
        + (f", schedule {_shown(schedule)}" if schedule else "")
        + (f", resuming after epoch {net.epochs_trained}" if args.resume else "") + sync + world)
    if net.epochs_trained >= args.epochs:
        say(f"nothing to train: the checkpoint has trained {_epochs(net.epochs_trained)} "
            f"already and --epochs {args.epochs} asks for {args.epochs} in all")
    started = time.perf_counter()
    epochs = _train_epochs(net, (X, y, Xt, yt), options, args, comm)
    if epochs is None:
        return 130  # Ctrl-C, after saving the last completed epoch
    final = net.evaluate(Xt, yt)
    # --quiet hides the progress, never the result
    in_run = f"{len(epochs) or 'none'} in this run, " if args.resume else ""
    say(f"final test accuracy {final['accuracy']:.2%} after {_epochs(net.epochs_trained)} "
        f"({in_run}{time.perf_counter() - started:.1f} s, device {net.backend_device}{world})")
    if args.save and _lead(args):
        net.save(args.save)
        say(f"saved to {args.save}")
    if args.metrics_json and _lead(args):
        metrics = _metrics(net, settings, epochs, final)
        metrics["world_size"] = 1 if comm is None else comm.Get_size()
        _write_json(args.metrics_json, metrics)
    return 0


def _train_epochs(net, data, options, args, comm=None):
    """Fit up to --epochs in all in one ``fit`` call (the training data is checked, copied and
    set up once): the per-epoch rows, or None after Ctrl-C, which saves the last completed
    epoch first.  A callback after each epoch prints its line and keeps its row and a
    snapshot of the network for Ctrl-C.  With ``comm`` (--distributed) the processes train
    together and only rank 0 prints; Ctrl-C then ends every process (see
    ``steepest.distributed``), and --checkpoint holds the last epoch it saved."""
    from steepest.models.checkpoint import write_checkpoint

    X, y, Xt, yt = data
    remaining = args.epochs - net.epochs_trained
    quiet = args.quiet or not _lead(args)
    bar = None if quiet else _bar(max(0, remaining))
    snapshot = _snapshot(net)  # the state after the last completed epoch, for Ctrl-C
    rows = []

    def epoch_ended(epoch, metrics):
        nonlocal snapshot
        snapshot = _snapshot(net)
        row = {"epoch": epoch, "loss": metrics["loss"], "test_loss": metrics["val_loss"],
               "test_accuracy": metrics["val_accuracy"],
               "learning_rate": metrics["learning_rate"],
               "samples_per_s": metrics["samples_per_s"], "seconds": metrics["seconds"]}
        rows.append(row)
        line = (f"epoch {epoch:3d}/{args.epochs}: loss {row['loss']:.4f}  test accuracy "
                f"{row['test_accuracy']:.2%}  {row['samples_per_s']:,.0f} samples/s")
        if bar is not None:
            bar.write(line)
            bar.update(1)
        elif not quiet:
            print(line)
        return False  # never stops training

    try:
        if remaining > 0:
            net.fit(X, y, epochs=remaining, validation_data=(Xt, yt),
                    checkpoint=args.checkpoint, callbacks=[epoch_ended], comm=comm,
                    **_sync_options(args, comm), **options)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
            bar = None
        path = args.checkpoint or args.save or "steepest-interrupted.npz"
        write_checkpoint(path, snapshot)
        print(f"\ninterrupted: saved the network after epoch {int(snapshot['epochs_trained'])} "
              f"to {path}; continue with --resume {path}", file=sys.stderr)
        return None
    finally:
        if bar is not None:
            bar.close()
    return rows


def _metrics(net, settings, epochs, final):
    metrics = {"device": net.backend_device, "sizes": net.sizes,
               "activation": net.activation, "output": net.output, "loss": net.loss,
               "batch_size": settings["batch_size"], "learning_rate": settings["learning_rate"],
               "optimizer": settings["optimizer"], "lr_schedule": settings["lr_schedule"],
               "seed": settings["seed"], "epochs_trained": net.epochs_trained,
               "epochs": epochs, "final": {"test_loss": final["loss"],
                                           "test_accuracy": final["accuracy"]}}
    if epochs:
        metrics["final"]["samples_per_s"] = epochs[-1]["samples_per_s"]
    return metrics


def _snapshot(net):
    """Copies of the network's state: the live arrays change with every epoch."""
    return {key: value.copy() if hasattr(value, "copy") else value
            for key, value in net._state().items()}


def _bar(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="epoch", disable=None)  # silent when not a terminal


def _write_json(path, data):
    from steepest.models.checkpoint import replaced_atomically

    with replaced_atomically(path) as handle:  # whole or not at all, with the umask's mode
        handle.write(json.dumps(data, indent=2).encode())


# ---------------------------------------------------------------- descend (issue 3)
# Default learning rates per function: converging slowly, converging fast, on the edge, over it.
DESCEND_RATES = {"quadratic": [0.1, 0.3, 1.0, 1.05], "bowl": [0.02, 0.05, 0.1, 0.105],
                 "rosenbrock": [0.0005, 0.001, 0.002]}


def _floats(text):
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers joined by ',', got {text!r}") from None


def _rates(text):
    rates = _floats(text)
    if not rates or not all(math.isfinite(rate) and rate > 0 for rate in rates):
        raise argparse.ArgumentTypeError(
            f"expected finite numbers > 0 joined by ',', got {text!r}")
    return rates


def _add_descend_parser(commands):
    descend_ = commands.add_parser(
        "descend", help="gradient descent on a function, drawn to a PNG",
        description="Run x ← x − η∇f(x) from a start point for several learning rates η, print "
                    "every point, and draw the function with each path side by side to a PNG.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    descend_.add_argument("--function", default="quadratic",
                          choices=["quadratic", "bowl", "rosenbrock"],
                          help="quadratic: x²; bowl: x² + 10y²; "
                               "rosenbrock: (1 − x)² + 100(y − x²)²")
    descend_.add_argument("--x0", type=_floats, default=None, metavar="X[,Y]",
                          help="start point; None = 5 for quadratic, -4,1.5 for bowl, "
                               "-1.2,1 for rosenbrock")
    descend_.add_argument("--learning-rates", "--lr", type=_rates, default=None,
                          metavar="ETA,ETA,...",
                          help="one panel per learning rate; None = a set that shows slow, fast, "
                               "oscillating and diverging descent")
    descend_.add_argument("--epochs", type=_whole(0), default=10, help="steps per path")
    descend_.add_argument("--output", "-o", default="descend.png", metavar="PNG",
                          help="where to draw the figure")
    descend_.add_argument("--no-plot", action="store_true",
                          help="only print the points (no matplotlib needed)")


def descend(args):
    import warnings

    import numpy as np

    from steepest.models.descent import FUNCTIONS, DivergenceWarning, minimize, plot_trajectories

    f, grad, default_x0, text = FUNCTIONS[args.function]
    x0 = default_x0 if args.x0 is None else args.x0
    if args.x0 is not None and len(args.x0) != np.size(default_x0):
        raise ValueError(f"--x0 for {args.function} needs {np.size(default_x0)} number(s); "
                         f"got {len(args.x0)}")
    if np.ndim(default_x0) == 0 and args.x0 is not None:
        x0 = args.x0[0]
    rates = DESCEND_RATES[args.function] if args.learning_rates is None else args.learning_rates
    with warnings.catch_warnings():
        # the table marks each diverged path (the default rates show one on purpose)
        warnings.simplefilter("ignore", DivergenceWarning)
        paths = [minimize(f, x0, grad, learning_rate=rate, epochs=args.epochs) for rate in rates]
    print(f"{text}, from x0 = {x0}, {args.epochs} steps")
    for path in paths:
        state = "diverged" if path.diverged else ("converged" if path.converged else "")
        points = ", ".join(_point(p) for p in path.points)
        print(f"η = {path.learning_rate:g}: {points}" + (f"  [{state}]" if state else ""))
    if args.no_plot:
        return 0
    try:
        plot_trajectories(f, paths, args.output, title=text)
    except ImportError as exc:
        print(f"error: {exc}; or use --no-plot", file=sys.stderr)
        return 2
    print(f"drew {len(paths)} paths to {args.output}")
    return 0


def _point(p):
    import numpy as np

    return f"{p:.6g}" if np.ndim(p) == 0 else "(" + ", ".join(f"{v:.6g}" for v in p) + ")"


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "sweep":
            return cli_sweep.run(args)
        return descend(args) if args.command == "descend" else train(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        if _lead(args):  # with --distributed every rank raises the same error
            print(f"error: {exc}", file=sys.stderr)
        return 2
