"""Command line: ``python -m steepest train`` trains an MLP on MNIST and reports per epoch.

The defaults are Nielsen's chapter-1 setup: 784-30-10, sigmoid, MSE, mini-batch 10,
learning rate 3.0, 30 epochs, trained on the 60,000 training images and tested on the 10,000
test images after every epoch.
"""

import argparse
import json
import os
import sys
import time


def _sizes(text):
    try:
        sizes = [int(part) for part in text.replace(",", "-").split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 784-30-10, got {text!r}") from None
    return sizes


def _batch(text):
    if text.lower() in ("full", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'full', got {text!r}") from None


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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m steepest",
        description="Train neural networks by gradient descent with Numba-compiled kernels.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser(
        "train", help="train an MLP on MNIST (Nielsen's chapter-1 defaults)",
        description="Train an MLP on MNIST and print test accuracy and samples/s per epoch. "
                    "With --resume, the architecture and training options come from the "
                    "checkpoint; a flag that contradicts it is an error.")
    # default=None on the training options: "not given", so --resume can tell a flag that
    # contradicts the checkpoint from one left alone
    train.add_argument("--sizes", type=_sizes, default=None, metavar="784-30-10",
                       help="layer widths, input first, joined by '-' (default: 784-30-10)")
    train.add_argument("--activation", default=None,
                       help="hidden activation: sigmoid (default), tanh, relu, identity")
    train.add_argument("--output", default=None,
                       help="output activation; by default what fits the loss (sigmoid for "
                            "mse, softmax for cross_entropy)")
    train.add_argument("--loss", default=None, help="mse (default) or cross_entropy")
    train.add_argument("--epochs", type=int, default=30,
                       help="train until the network has trained this many epochs in all "
                            "(default: 30)")
    train.add_argument("--batch-size", type=_batch, default=None,
                       help="1 = per-sample SGD, 'full' = full-batch GD (default: 10)")
    train.add_argument("--learning-rate", "--lr", type=float, default=None,
                       help="the base learning rate η (default: 3.0)")
    train.add_argument("--optimizer", default=None,
                       help="sgd (default), momentum, adagrad, rmsprop or adam")
    train.add_argument("--lr-schedule", type=_schedule, default=None,
                       metavar="NAME[:key=value,...]",
                       help="constant (default), step, exponential, invscaling or plateau, "
                            "with arguments, e.g. step:step_size=10,factor=0.5")
    train.add_argument("--train-samples", type=int, default=None, metavar="N",
                       help="train on the first N training images only (default: all 60,000)")
    train.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    train.add_argument("--seed", type=int, default=None, help="default: 0")
    train.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False,
                       default=None, help="train in the files' order")
    train.add_argument("--data-dir", default=None,
                       help="directory of MNIST IDX files (default: $STEEPEST_MNIST_DIR or "
                            "the copy shipped with steepest)")
    train.add_argument("--save", metavar="PATH", default=None, help="save the trained network")
    train.add_argument("--checkpoint", metavar="PATH", default=None,
                       help="save the network and training state after every epoch; Ctrl-C "
                            "saves the last completed epoch here (else to --save, else to "
                            "steepest-interrupted.npz)")
    train.add_argument("--resume", metavar="PATH", default=None,
                       help="continue training from a checkpoint up to --epochs in total, "
                            "with the checkpoint's architecture and training options")
    train.add_argument("--metrics-json", metavar="PATH", default=None,
                       help="write per-epoch and final metrics as JSON")
    train.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    _add_descend_parser(commands)
    return parser


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


def train(args):

    import steepest
    from steepest.models.checkpoint import write_checkpoint
    from steepest.models.schedules import schedule_from_config

    X, y, Xt, yt = steepest.load_mnist(args.data_dir)
    if args.train_samples is not None:
        if not 1 <= args.train_samples <= len(X):
            raise ValueError(f"--train-samples must be in 1..{len(X)}; got {args.train_samples}")
        X, y = X[:args.train_samples], y[:args.train_samples]
    given = _given(args)
    if args.resume:
        net, settings = _resumed_network(args, given)
    else:
        settings = {**TRAIN_DEFAULTS, **given}
        net = steepest.Network(settings["sizes"], activation=settings["activation"],
                               output=settings["output"], loss=settings["loss"],
                               seed=settings["seed"], device=args.device)
    schedule = settings["lr_schedule"]
    options = {"batch_size": settings["batch_size"], "shuffle": settings["shuffle"],
               "learning_rate": settings["learning_rate"], "optimizer": settings["optimizer"],
               "lr_schedule": "constant" if schedule is None else schedule_from_config(schedule)}
    if args.resume and net._train_config is not None:
        options = {}  # the network continues with its own optimiser, rate, schedule, batch
    say = (lambda *a: None) if args.quiet else print
    say(f"{net}: {net.n_parameters:,} parameters, {len(X):,} training samples, "
        f"batch size {settings['batch_size'] or 'full'}, {settings['optimizer']} at learning "
        f"rate {settings['learning_rate']}"
        + (f", schedule {_shown(schedule)}" if schedule else "")
        + (f", resuming after epoch {net.epochs_trained}" if args.resume else ""))
    epochs = []
    first = net.epochs_trained + 1
    bar = None if args.quiet else _bar(max(0, args.epochs - first + 1))
    started = time.perf_counter()
    snapshot = _snapshot(net)  # the state after the last completed epoch, for Ctrl-C
    try:
        for epoch in range(first, args.epochs + 1):
            hist = net.fit(X, y, epochs=1, validation_data=(Xt, yt),
                           checkpoint=args.checkpoint, **options)
            snapshot = _snapshot(net)
            row = {"epoch": epoch, "loss": hist["loss"][0], "test_loss": hist["val_loss"][0],
                   "test_accuracy": hist["val_accuracy"][0],
                   "learning_rate": hist["learning_rate"][0],
                   "samples_per_s": hist["samples_per_s"][0], "seconds": hist["seconds"][0]}
            epochs.append(row)
            line = (f"epoch {epoch:3d}/{args.epochs}: loss {row['loss']:.4f}  test accuracy "
                    f"{row['test_accuracy']:.2%}  {row['samples_per_s']:,.0f} samples/s")
            if bar is not None:
                bar.write(line)
                bar.update(1)
            else:
                say(line)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        path = args.checkpoint or args.save or "steepest-interrupted.npz"
        write_checkpoint(path, snapshot)
        print(f"\ninterrupted: saved the network after epoch {int(snapshot['epochs_trained'])} "
              f"to {path}; continue with --resume {path}", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    final = net.evaluate(Xt, yt)
    say(f"final test accuracy {final['accuracy']:.2%} after {net.epochs_trained} epochs "
        f"({time.perf_counter() - started:.1f} s, device {net.backend_device})")
    if args.save:
        net.save(args.save)
        say(f"saved to {args.save}")
    if args.metrics_json:
        metrics = {"device": net.backend_device, "sizes": net.sizes,
                   "activation": net.activation, "output": net.output, "loss": net.loss,
                   "batch_size": settings["batch_size"], "learning_rate": settings["learning_rate"],
                   "optimizer": settings["optimizer"], "lr_schedule": schedule,
                   "seed": settings["seed"], "epochs_trained": net.epochs_trained,
                   "epochs": epochs, "final": {"test_loss": final["loss"],
                                               "test_accuracy": final["accuracy"]}}
        if epochs:
            metrics["final"]["samples_per_s"] = epochs[-1]["samples_per_s"]
        _write_json(args.metrics_json, metrics)
    return 0


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
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


# ---------------------------------------------------------------- descend (issue 3)
# Default learning rates per function: converging slowly, converging fast, on the edge, over it.
DESCEND_RATES = {"quadratic": [0.1, 0.3, 1.0, 1.05], "bowl": [0.02, 0.05, 0.1, 0.105],
                 "rosenbrock": [0.0005, 0.001, 0.002]}


def _floats(text):
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers joined by ',', got {text!r}") from None


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
    descend_.add_argument("--learning-rates", "--lr", type=_floats, default=None,
                          metavar="ETA,ETA,...",
                          help="one panel per learning rate; None = a set that shows slow, fast, "
                               "oscillating and diverging descent")
    descend_.add_argument("--epochs", type=int, default=10, help="steps per path")
    descend_.add_argument("--output", "-o", default="descend.png", metavar="PNG",
                          help="where to draw the figure")
    descend_.add_argument("--no-plot", action="store_true",
                          help="only print the points (no matplotlib needed)")


def descend(args):
    import numpy as np

    from steepest.models.descent import FUNCTIONS, minimize, plot_trajectories

    f, grad, default_x0, text = FUNCTIONS[args.function]
    x0 = default_x0 if args.x0 is None else args.x0
    if args.x0 is not None and len(args.x0) != np.size(default_x0):
        raise ValueError(f"--x0 for {args.function} needs {np.size(default_x0)} number(s); "
                         f"got {len(args.x0)}")
    if np.ndim(default_x0) == 0 and args.x0 is not None:
        x0 = args.x0[0]
    rates = DESCEND_RATES[args.function] if args.learning_rates is None else args.learning_rates
    if not rates:
        raise ValueError("--learning-rates needs at least one number")
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
        return descend(args) if args.command == "descend" else train(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
