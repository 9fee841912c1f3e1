"""Sweeps: every learning rate × every seed, trained as K same-shaped networks in one
compiled call per epoch (``steepest.sweep``).

The tutorials' central lesson is the learning rate: too small crawls, too large oscillates or
diverges.  A sweep trains all the candidates together over the same order of samples: each
epoch is ONE kernel call for the K networks (``kernels.*.sweep_sgd_epoch`` and
``sweep_optimizer_epoch``; on the CPU the networks are spread over the cores), and each
network trains exactly as it would alone with that order of samples: its own learning rate,
initial weights (its seed), optimiser state, divergence check and ``History``.  A network
that diverges is stopped with its weights restored to its last good epoch, and the others go
on.

The order of samples is the first network's: the sweep shuffles with a copy of its
generator, so the first network equals ``Network(sizes, seed=seeds[0]).fit(...)`` at
``learning_rates[0]`` bit for bit, and every other network equals its own ``fit`` given the
same order.  (Bit for bit where ``fit`` takes the fused path, as it does for the tutorials'
batches; where a batch's work is large enough for ``fit`` to share it among the threads, the
tiled path, ``kernels/cpu/paths.py``, the sweep, which already gives each network a thread,
stays on the fused path, and the two agree to float32 rounding.)
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from .. import distributed
from ..kernels import codes
from ..kernels.rows import n_rows, row_slice
from ..progress import progress_bar
from .backend import get_backend
from .history import History
from .network import (
    DEFAULT_BATCH_SIZE,
    PROBE_ROWS,
    Network,
    TrainingWarning,
    _accuracy_groups,
    input_scale_warning,
)
from .optimizers import Optimizer
from .validation import check_count, check_positive_real

# A dense X of mostly zeros is compacted into sparse rows (as fit does) when the sweep reads
# it at least this many times (networks × epochs): the copy's first touch of new memory costs
# 100-150 ms on MNIST here, which 16 one-epoch networks repay (0.71 s against 0.85 s dense,
# measured) and 4 do not (0.32 s against 0.24 s); the crossover was at 8.
COMPACT_MODEL_EPOCHS = 8

# fit's keywords a sweep does not take, and why
NOT_IN_A_SWEEP = {
    "learning_rate": "give learning_rates=[...] instead",
    "callbacks": "a sweep has no per-network callbacks",
    "checkpoint": "save the networks of the result instead (result.networks[i].save)",
    "checkpoint_every": "save the networks of the result instead (result.networks[i].save)",
    "sync": "a sweep's networks train apart: comm= splits them over the ranks",
}


@dataclass
class SweepRun:
    """One network of a sweep: its learning rate and seed, the trained network, its
    ``History``, and, when it diverged, why (``diverged``, the message ``fit``'s
    DivergenceError would carry) and in which epoch (``diverged_epoch``); else None."""

    learning_rate: float
    seed: int | None
    network: Network
    history: History
    diverged: str | None = None
    diverged_epoch: int | None = None

    @property
    def final(self):
        """The last epoch's metrics (loss, val_loss, ...), {} before any epoch."""
        return {key: values[-1] for key, values in self.history.history.items() if values}


class SweepResult:
    """What ``sweep`` returns: the runs in the order of ``params`` (every seed, and for each
    seed every learning rate), with ``networks``, ``histories``, ``best`` and ``table()``."""

    def __init__(self, runs):
        self.runs = list(runs)

    @property
    def params(self):
        """One dict per network: its ``learning_rate`` and ``seed``."""
        return [{"learning_rate": run.learning_rate, "seed": run.seed} for run in self.runs]

    @property
    def networks(self):
        return [run.network for run in self.runs]

    @property
    def histories(self):
        return [run.history for run in self.runs]

    @property
    def diverged(self):
        """For each network: why it diverged (a message naming the epoch), or None."""
        return [run.diverged for run in self.runs]

    @property
    def best(self):
        """The run with the lowest final validation loss (with validation data), else the
        lowest final training loss, among those that did not diverge; None when all did."""
        finished = [run for run in self.runs if run.diverged is None and run.final]
        if not finished:
            return None
        key = "val_loss" if "val_loss" in finished[0].final else "loss"
        return min(finished, key=lambda run: run.final[key])

    def table(self):
        """The final metrics of every network, one row each, the best marked with *."""
        keys = [key for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                if any(key in run.final for run in self.runs)]
        best = self.best
        lines = ["  " + "  ".join([f"{'learning_rate':>13s}", f"{'seed':>6s}", f"{'epochs':>6s}",
                                   *(f"{key:>12s}" for key in keys), "status"])]
        for run in self.runs:
            cells = [f"{run.learning_rate:13.6g}", f"{str(run.seed):>6s}",
                     f"{len(run.history):6d}",
                     *(f"{run.final.get(key, float('nan')):12.6g}" for key in keys),
                     _status(run)]
            lines.append(("* " if run is best else "  ") + "  ".join(cells))
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"SweepResult({len(self.runs)} networks)"

    def plot(self, path, key="loss"):
        """Every network's ``key`` (default: the training loss) per epoch on one figure (log
        scale; a diverged network's curve ends with an ×), written to ``path``.  Needs
        matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            import matplotlib.ticker
        except ImportError:
            raise ImportError("SweepResult.plot needs matplotlib: pip install matplotlib") \
                from None
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for run in self.runs:
            values = run.history[key] if key in run.history.history else []
            label = f"η={run.learning_rate:g}" + (f", seed {run.seed}" if run.seed is not None
                                                    else "")
            line, = axes.plot(run.history["epoch"], values, marker=".", label=label)
            if run.diverged:
                label += " (diverged)"
                line.set_label(label)
                if len(values):
                    axes.plot(run.history["epoch"][-1:], values[-1:], "x", ms=10,
                              color=line.get_color())
        axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(key)
        axes.set_yscale("log")
        axes.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)


def _status(run):
    """A run's status in the table: diverged (and when), warned (see its history), or ok."""
    if run.diverged:
        return f"diverged in epoch {run.diverged_epoch}"
    return "warned: see its history.warnings" if run.history.warnings else "ok"


def _split_options(options):
    """(the Network constructor's keywords, fit's) from ``options``; a TypeError naming any
    other keyword, or one of fit's that a sweep does not take."""
    network_keys = set(inspect.signature(Network.__init__).parameters) - {"self", "sizes",
                                                                            "seed"}
    fit_keys = set(inspect.signature(Network.fit).parameters) - {"self", "X", "y"}
    built, fitted = {}, {}
    for key, value in options.items():
        if key in NOT_IN_A_SWEEP:
            raise TypeError(f"sweep() does not take {key}=: {NOT_IN_A_SWEEP[key]}")
        if key in network_keys:
            built[key] = value
        elif key in fit_keys:
            fitted[key] = value
        else:
            raise TypeError(f"sweep() got an unexpected keyword argument {key!r}; it takes the "
                            f"Network constructor's ({', '.join(sorted(network_keys))}) and "
                            f"fit's ({', '.join(sorted(fit_keys - set(NOT_IN_A_SWEEP)))})")
    return built, fitted


def _check_list(values, name, check):
    """A non-empty list of ``check``ed values from a sequence (or one value)."""
    if values is None or isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence; got {values!r}")
    if not isinstance(values, Sequence | np.ndarray):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return [check(value, f"{name}[{i}]") for i, value in enumerate(values)]


def _check_seed(seed, name):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"{name} must be an int or None; got {seed!r}")
    return None if seed is None else int(seed)


def sweep(sizes: Sequence[int], X, y, learning_rates: Sequence[float] | None = None,
          seeds: Sequence[int | None] = (0,), epochs: int = 1,
          batch_size: int | None = DEFAULT_BATCH_SIZE, validation_data=None, comm=None,
          **options) -> SweepResult:
    """Train a ``Network(sizes, seed=s, ...)`` for every seed s in ``seeds`` and learning rate
    η in ``learning_rates`` (seed-major: every rate of the first seed, then the next seed's),
    as if each were ``fit(X, y, epochs=epochs, batch_size=batch_size, learning_rate=η,
    validation_data=validation_data, ...)`` alone, in one compiled call per epoch for all.

    ``learning_rates`` None: the optimiser's default rate alone.
    ``options``: the Network constructor's keywords (activation, output, loss, device, init,
    multilabel) and fit's other keywords (shuffle, optimizer, lr_schedule, validation_split,
    verbose).  ``seeds`` defaults to (0,), so every learning rate starts from the same weights.
    The samples come in the first network's order (see the module docstring).  A network
    that diverges is stopped, its weights restored to its last good epoch (``SweepRun.
    diverged`` says why); the others go on.  Returns a ``SweepResult``.

    ``comm``: an mpi4py communicator (a script run by ``mpiexec -n R``, every rank calling
    ``sweep`` with the same arguments): the networks are split over the ranks in contiguous
    near-equal shares (``distributed.shard_rows``), each rank trains its share in one call
    per epoch on its share of the node's cores (with device="cuda", on GPU local rank %
    GPUs), and every rank returns the whole result (one ``allgather``), each network as it
    would be trained in one process.  An error on any rank raises on every rank.
    """
    built, fitted = _split_options(options)
    rates = [None] if learning_rates is None else _check_list(
        learning_rates, "learning_rates", check_positive_real)
    seeds = _check_list(seeds, "seeds", _check_seed)
    epochs = check_count(epochs, "epochs", 0)
    pairs = [(rate, seed) for seed in seeds for rate in rates]
    if comm is None:
        return SweepResult(_train_share(sizes, X, y, pairs, range(len(pairs)), epochs,
                                        batch_size, validation_data, built, fitted))
    comm = distributed.check_comm(comm)
    share = range(*distributed.shard_rows(len(pairs), *distributed.rank_and_size(comm)))
    # this rank's GPU (local rank % GPUs) before any device work, as fit(comm=...) does
    distributed.place(comm, get_backend(built.get("device", "auto")))
    # checked and set up on every rank before any training: an error anywhere stops all
    sweep_ = distributed.agree(
        comm, lambda: _set_up(sizes, X, y, pairs, share, epochs, batch_size, validation_data,
                              built, fitted),
        signature=lambda _: {"learning_rates and seeds": pairs, "epochs": epochs,
                             "batch_size": batch_size})
    with distributed.abort_on_failure(comm), distributed.thread_limit(comm):
        if share:
            sweep_.train()
        runs = comm.allgather(sweep_.runs)
    return SweepResult(run for ranks_runs in runs for run in ranks_runs)


def _train_share(sizes, X, y, pairs, share, epochs, batch_size, validation_data, built,
                 fitted):
    """The runs of the networks ``pairs[i]`` for i in ``share``, trained."""
    sweep_ = _set_up(sizes, X, y, pairs, share, epochs, batch_size, validation_data, built,
                     fitted)
    sweep_.train()
    return sweep_.runs


def _set_up(sizes, X, y, pairs, share, epochs, batch_size, validation_data, built, fitted):
    """The networks of ``pairs[i]`` for i in ``share`` (a range), their checked data and
    fit plans, ready to train: a ``_Sweep`` (with no networks for an empty share)."""
    nets = [Network(sizes, seed=pairs[i][1], **built) for i in share]
    # every share shuffles as the sweep's first network would (its generator after its
    # initial weights were drawn), so that a network trains alike whatever share it is in
    first = nets[0] if share.start == 0 and nets else Network(sizes, seed=pairs[0][1], **built)
    compact = first._backend.sparse_rows and epochs * len(nets) >= COMPACT_MODEL_EPOCHS
    data = first._training_data(X, y, validation_data, fitted.get("validation_split"),
                                compact, epochs > 0)
    optimizer = fitted.get("optimizer")
    plans = []
    for net, i in zip(nets, share):
        rate, opt = _with_rate(optimizer, pairs[i][0])
        plans.append(net._plan_fit(
            data, epochs, batch_size, learning_rate=rate, shuffle=fitted.get("shuffle", True),
            verbose=fitted.get("verbose", 0), callbacks=None,
            lr_schedule=fitted.get("lr_schedule"), checkpoint=None, checkpoint_every=1,
            optimizer=opt))
    runs = [SweepRun(plan.opt.learning_rate, pairs[i][1], net, History(net.backend_device))
            for net, plan, i in zip(nets, plans, share)]
    return _Sweep(nets, plans, runs, first._rng.bit_generator.state)


def _with_rate(optimizer, rate):
    """(learning_rate, optimizer) for fit: a configured optimiser takes the sweep's rate
    (its other hyper-parameters kept); a name or class gets it as fit's learning_rate."""
    if isinstance(optimizer, Optimizer) and rate is not None:
        return None, optimizer.with_learning_rate(rate)
    return rate, optimizer


class _Sweep:
    """The K networks' training state, stacked for the kernels, and the epoch loop."""

    def __init__(self, nets, plans, runs, order_state):
        self.nets, self.plans, self.runs = nets, plans, runs
        if not nets:  # an MPI rank with no share of the networks
            return
        self.plan = plans[0]  # what the networks share: data, epochs, batch, kind of optimiser
        self.backend = nets[0]._backend
        opt = self.plan.opt
        self.plain_sgd = opt.plain_sgd
        # the networks' parameters, optimiser states and steps as rows of one array each;
        # each network works on a view of its row while the sweep runs
        states = [net._optimizer_state(plan.opt) for net, plan in zip(nets, plans)]
        self.params = np.stack([net._params for net in nets])
        self.state = np.stack([state for state, _ in states])
        self.step = np.stack([step for _, step in states])
        self._share_rows()
        self.active = np.ones(len(nets), np.int64)
        self.epoch = nets[0].epochs_trained  # the networks are new: they train in step
        # the sweep's order of samples: a generator in ``order_state`` (the first network's)
        self.order_rng = np.random.default_rng()
        self.order_rng.bit_generator.state = order_state

    def _share_rows(self):
        for k, net in enumerate(self.nets):
            net._params, net._opt_state, net._opt_step = (self.params[k], self.state[k],
                                                          self.step[k])

    def _own_rows(self):
        for net in self.nets:
            net._params, net._opt_state, net._opt_step = (net._params.copy(),
                                                          net._opt_state.copy(),
                                                          net._opt_step.copy())

    def train(self):
        """The sweep: set up, warm up, epochs; each network keeps its own arrays at the end.
        Each network's training warnings (fit's ``TrainingWarning``: unscaled inputs, layers
        no gradient reaches) go into its history, and each kind is warned once at the end."""
        k, plan = self.backend, self.plan
        self.warned = [SimpleNamespace(warned=set()) for _ in self.nets]  # as fit's _Run
        try:
            for net, p in zip(self.nets, self.plans):
                net._remember_training(p)
            X, Y, n = plan.X, plan.Y, n_rows(plan.X)
            self.X_dev, self.Y_dev = k.to_device(X), k.to_device(Y)
            probe = min(n, PROBE_ROWS)
            self.probe_dev = (k.to_device(row_slice(X, 0, probe)), k.to_device(Y[:probe]))
            # the probe runs the loop the sweep kernel trains each network with, which it
            # compiled: no gradient function of its own (``Backend.gradient_for_sweeps``)
            self.probe_epochs = (plan.batch_size, n, self.plain_sgd)
            # the training accuracy on X's rows as the sweep trains on them (compacted where
            # fit would read the caller's own, plan.accuracy_X): the same bits, and the pass
            # runs K times an epoch, 1.2 ms quicker each on compacted MNIST rows (W1), where
            # the one compile it saves happens once
            self.blocks = None if plan.truth is None else _accuracy_groups(
                X, Y, plan.truth, self.nets[0].sizes[-1])
            if plan.epochs:
                warmup = self._warm_up()
                for run in self.runs:
                    run.history.warmup_seconds = warmup
                self.start_loss = self._start_losses()
                scale = input_scale_warning(X, self.nets[0].sizes[0])  # X's alone: once
                if scale is not None:
                    with warnings.catch_warnings():  # into each history; one warning at the end
                        warnings.simplefilter("ignore", TrainingWarning)
                        for net, run, state in zip(self.nets, self.runs, self.warned):
                            net._warn("scale", scale, state, run.history)
            progress = progress_bar(plan.epochs, plan.verbose, unit="epoch")
            try:
                for _ in range(plan.epochs):
                    if not self.active.any():
                        break
                    self._epoch()
                    if progress is not None:
                        progress.update(1)
            finally:
                if progress is not None:
                    progress.close()
        finally:
            self._own_rows()
        self._warn_once()

    def _warn_once(self):
        """Each training warning of the networks once, naming the learning rates it hit."""
        messages = [m for run in self.runs for m in run.history.warnings]
        for message in dict.fromkeys(messages):
            rates = [f"{run.learning_rate:g}" for run in self.runs
                     if message in run.history.warnings]
            warnings.warn(f"{len(rates)} of the sweep's {len(self.runs)} networks (learning "
                          f"rate {', '.join(rates)}): {message}", TrainingWarning, stacklevel=4)

    def _rates(self, epoch):
        """Each network's learning rate for ``epoch`` (its schedule's, else its own)."""
        rates = []
        for net, plan in zip(self.nets, self.plans):
            rate = plan.opt.learning_rate
            if plan.schedule is not None:
                rate = check_positive_real(plan.schedule(epoch, rate, net._log),
                                           "the learning rate from lr_schedule")
            rates.append(rate)
        return rates

    def _run_kernel(self, params, state, step, X_dev, Y_dev, n, order, rates):
        """One epoch of every active network in ONE kernel call; their mean losses (K,)."""
        k, plan = self.backend, self.plan
        net = self.nets[0]
        shape = (net._size_array, net._activation_codes, net._loss_code)
        losses = np.empty(len(self.nets), np.float32)
        order_dev = k.to_device(order)
        batch = n if plan.batch_size is None else min(plan.batch_size, n)
        if self.plain_sgd:
            k.kernels.sweep_sgd_epoch(params, *shape, X_dev, Y_dev, order_dev, batch,
                                      np.array(rates, np.float32), self.active, losses)
            return losses
        hyper = np.stack([p.opt.hyper() for p in self.plans])
        hyper[:, codes.HYPER_LEARNING_RATE] = rates
        k.kernels.sweep_optimizer_epoch(params, state, step, *shape, plan.opt.code, hyper,
                                        X_dev, Y_dev, order_dev, batch, self.active, losses)
        return losses

    def _warm_up(self):
        """Compile (or load) the sweep kernel on a few rows and scratch copies of the state,
        so that epoch 1's time is training; returns the seconds it took."""
        k, plan = self.backend, self.plan
        tic = time.perf_counter()
        # the fewest rows that compile what the epoch runs, not a whole epoch for a batch
        # of all the rows (``Backend.warm_up_shape``)
        few = k.warm_up_shape(self.nets[0].sizes, plan.batch_size, n_rows(plan.X))[0]
        self._run_kernel(k.to_device(self.params.copy()), k.to_device(self.state.copy()),
                         k.to_device(self.step.copy()), k.to_device(row_slice(plan.X, 0, few)),
                         k.to_device(plan.Y[:few]), few, np.arange(few), self._rates(1))
        return time.perf_counter() - tic

    def _epoch(self):
        """One epoch of every active network, then each one's checks and metrics."""
        k, plan = self.backend, self.plan
        n = n_rows(plan.X)
        self.epoch += 1
        epoch = self.epoch
        rates = self._rates(epoch)
        order = self.order_rng.permutation(n) if plan.shuffle else np.arange(n)
        last_good = [net._training_snapshot() for net in self.nets]
        params_dev, state_dev, step_dev = (k.to_device(a) for a in (self.params, self.state,
                                                                     self.step))
        tic = time.perf_counter()
        losses = self._run_kernel(params_dev, state_dev, step_dev, self.X_dev, self.Y_dev, n,
                                  order, rates)
        for host, device in ((self.params, params_dev), (self.state, state_dev),
                             (self.step, step_dev)):
            k.to_host(host, device)
        seconds = time.perf_counter() - tic
        trained = np.flatnonzero(self.active)
        checked = self.backend.each_item(
            lambda i: self._check_epoch(i, epoch, float(losses[i]), rates[i], last_good[i]),
            list(trained))
        for i, (probe, right) in zip(trained, checked, strict=True):
            if self.active[i]:
                self._record(i, epoch, float(losses[i]), rates[i], seconds, probe, right)

    def _check_epoch(self, i, epoch, loss, rate, last_good):
        """Network i after ``epoch``: (its probe, the rows it predicts right), or (its probe,
        None) where it diverged and was stopped.  One item per network for the threads
        (``Backend.each_item``), so that a network's accuracy pass follows its own probe
        with no wait for the others' probes."""
        net = self.nets[i]
        probe = self._probe(net)
        if not self._still_good(i, epoch, loss, rate, probe, last_good):
            return probe, None
        return probe, self._right(net)

    def _start_losses(self):
        """Each network's probe loss before training (fit's ``start_loss``), probed once for
        the networks that start from the same weights (a learning-rate sweep's, from one
        seed): a function of the weights and the probe rows alone."""
        firsts = {}  # the weights' bytes -> the first network that starts from them
        starts = [firsts.setdefault(params.tobytes(), i) for i, params in enumerate(self.params)]
        probed = list(firsts.values())
        losses = dict(zip(probed, self.backend.each_item(
            lambda i: self._probe(self.nets[i])[0], probed), strict=True))
        return [losses[first] for first in starts]

    def _probe(self, net):
        """fit's gradient probe of one network, by the sweep's code."""
        return net._probe_gradient(self.backend.to_device(net._params), *self.probe_dev,
                                   self.probe_epochs, sweep=True)

    def _right(self, net):
        """The rows of the training-accuracy blocks ``net`` predicts right (None without
        them)."""
        return None if self.blocks is None else net._training_accuracy(self.blocks)

    def _still_good(self, i, epoch, loss, rate, probe, last_good):
        """Network i's divergence check after ``epoch`` (as ``fit``'s): False, with the
        network stopped and its weights restored to ``last_good``, where it diverged."""
        net, run = self.nets[i], self.runs[i]
        probe_loss, _, moving = probe
        problem = net._divergence(loss, probe_loss, moving, self.start_loss[i])
        if problem is None:
            return True
        net._restore_training_snapshot(last_good)
        self.active[i] = 0
        run.diverged_epoch = epoch
        run.diverged = (f"training diverged in epoch {epoch}: {problem} at "
                        f"learning_rate={rate}; the weights were restored to the end of "
                        f"epoch {epoch - 1}")
        return False

    def _record(self, i, epoch, loss, rate, seconds, probe, right):
        """Network i's epoch in its history: its gradient-flow check and its metrics, the
        training accuracy from ``right`` (``_right``)."""
        net, run, plan = self.nets[i], self.runs[i], self.plans[i]
        probe_loss, norms, _ = probe
        with warnings.catch_warnings():  # into its history; one warning at the end
            warnings.simplefilter("ignore", TrainingWarning)
            net._check_gradient_flow(probe_loss, norms, self.warned[i], run.history)
        net.epochs_trained = epoch
        metrics = net._epoch_metrics(epoch, loss, seconds, n_rows(plan.X), rate, norms,
                                     self.blocks, plan.validation, right=right)
        net._record_epoch(run.history, metrics)
