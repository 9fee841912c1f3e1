"""``python -m steepest sweep``: one network per learning rate (and seed) on MNIST, trained
together by ``steepest.sweep``; prints the final metrics as a table and, with ``--plot``,
draws every network's loss curve on one figure (a diverging rate is visible at a glance)."""

import argparse

from steepest.models.backend import DEVICES
from steepest.models.optimizers import OPTIMIZERS
from steepest.models.tables import HIDDEN_ACTIVATIONS, LOSSES


def _seeds(text):
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected whole numbers ≥ 0 joined by ',', got {text!r}")
    return seeds


def add_parser(commands):
    from steepest import cli

    sweep = commands.add_parser(
        "sweep", help="train one MNIST network per learning rate (and seed), all together",
        description="Train a network for every learning rate (and seed) on MNIST in one "
                    "compiled call per epoch, then print each one's final loss and test "
                    "accuracy (the best marked with *); --plot draws every loss curve.")
    sweep.add_argument("--learning-rates", "--lr", type=cli._rates, required=True,
                       metavar="ETA,ETA,...", help="one network per learning rate")
    sweep.add_argument("--seeds", type=_seeds, default=[0], metavar="S,S,...",
                       help="one network per seed and learning rate (default: 0)")
    sweep.add_argument("--sizes", type=cli._sizes, default=[784, 30, 10], metavar="784-30-10",
                       help="layer widths, input first, joined by '-' (default: 784-30-10)")
    sweep.add_argument("--activation", type=cli._one_of(HIDDEN_ACTIVATIONS, "activation"),
                       default="sigmoid", help="hidden activation (default: sigmoid)")
    sweep.add_argument("--loss", type=cli._one_of(LOSSES, "loss"), default="mse",
                       help=f"{cli._names(LOSSES)} (default: mse)")
    sweep.add_argument("--epochs", type=cli._whole(1), default=3, help="default: 3")
    sweep.add_argument("--batch-size", type=cli._batch, default=10,
                       help="1 = per-sample SGD, 'full' = full-batch GD (default: 10)")
    sweep.add_argument("--optimizer", type=cli._one_of(OPTIMIZERS, "optimizer"), default="sgd",
                       help=f"{cli._names(OPTIMIZERS)} (default: sgd)")
    sweep.add_argument("--train-samples", type=cli._whole(1), default=None, metavar="N",
                       help="train on the first N training images only (default: all 60,000)")
    sweep.add_argument("--device", type=cli._one_of(DEVICES, "device"), default="auto",
                       help=f"{cli._names(DEVICES)} (default: auto)")
    sweep.add_argument("--data-dir", type=cli._existing_directory, default=None,
                       help="directory of MNIST IDX files (default: the shipped copy)")
    sweep.add_argument("--plot", type=cli._output_path, metavar="PNG", default=None,
                       help="draw every network's loss per epoch on one figure (matplotlib)")
    sweep.add_argument("--metrics-json", type=cli._output_path, metavar="PATH", default=None,
                       help="write every network's parameters and per-epoch metrics as JSON")


def run(args):
    """The `sweep` command: train, print the table, draw and write what was asked for."""
    import time

    import steepest
    from steepest import cli

    X, y, Xt, yt = cli._mnist(args)
    batch = None if args.batch_size == "full" else args.batch_size
    count = len(args.learning_rates) * len(args.seeds)
    print(f"sweep of {count} networks {'-'.join(map(str, args.sizes))} ({args.activation}, "
          f"{args.loss}, {args.optimizer}), {len(X):,} training samples, batch size "
          f"{batch or 'full'}, {cli._epochs(args.epochs)}")
    started = time.perf_counter()
    result = steepest.sweep(args.sizes, X, y, learning_rates=args.learning_rates,
                            seeds=args.seeds, epochs=args.epochs, batch_size=batch,
                            validation_data=(Xt, yt), activation=args.activation,
                            loss=args.loss, optimizer=args.optimizer, device=args.device)
    print(result.table())
    print(f"{count} networks in {time.perf_counter() - started:.1f} s "
          f"(device {result.networks[0].backend_device}); validation: the 10,000 test images")
    if args.plot:
        result.plot(args.plot)
        print(f"loss curves drawn to {args.plot}")
    if args.metrics_json:
        cli._write_json(args.metrics_json, [
            {**params, "diverged": run.diverged, "history": run.history.to_dict()}
            for params, run in zip(result.params, result.runs)])
    return 0
