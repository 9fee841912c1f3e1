"""``Network``: a fully connected feed-forward network trained by gradient descent.

Plain Python: it holds the layer sizes, the parameters (one flat float32 vector, viewed as
per-layer W and b) and the hyper-parameters, checks every input, and hands the numerical
work to the kernel set its backend chose.  It never branches on the device.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import distributed
from ..kernels import codes
from ..kernels.rows import SparseRows, n_rows, row_slice, take_rows, to_dense
from ..progress import progress_bar
from .backend import get_backend
from .checkpoint import CheckpointError, field, json_field, read_checkpoint, write_checkpoint
from .history import History
from .optimizers import Optimizer, get_optimizer, optimizer_from_config
from .outputs import (
    accuracies,
    check_targets,
    looks_multilabel,
    output_kind,
    predictions,
    probabilities,
)
from .schedules import SCHEDULES, Constant, Schedule, schedule_from_config, schedule_function
from .tables import (
    HIDDEN_ACTIVATIONS,
    LOSSES,
    OUTPUT_ACTIVATIONS,
    default_initializer,
    initial_params,
    lookup,
)
from .threads import check_threads, numba_threads
from .validation import (
    check_count,
    check_features,
    check_finite,
    check_fraction,
    check_positive_real,
    rows_as_given,
    training_features,
)

PROBE_ROWS = 256  # samples in the per-epoch gradient probe
# Training accuracy after each epoch is measured on at most this many training rows, in
# ACCURACY_BLOCKS runs of consecutive rows evenly spaced through X (views, no copy of X; spread
# out, so data sorted by class is measured fairly): a forward pass over 10,000 rows costs
# milliseconds, over millions it would cost more than the epoch.
ACCURACY_ROWS = 10_000
ACCURACY_BLOCKS = 8
# One kernel call of that pass computes outputs of at most this share of X's bytes (at
# least one block's): on MNIST's 50,000 rows all eight blocks in one call (each call wakes
# the threads), while beside a small X the outputs stay small (issue 14: all eight blocks'
# at once took a 12,000-row CSR fit's extra peak from 9.0% to 10.6% of X's size).
ACCURACY_OUT_SHARE = 0.01
# forward, predict and evaluate run over at most EVAL_CHUNK rows per kernel call, and fewer
# for wide networks, so that one call's activations (rows × Σ widths float32) stay within
# EVAL_BYTES of (device) memory whatever the size of the input
EVAL_CHUNK = 65_536
EVAL_BYTES = 256 * 2**20
DEFAULT_BATCH_SIZE = 32  # fit's batch size for a network that has not trained yet
# Divergence beyond NaN/inf: an epoch loss this many times the loss at the start of fit
# (at least 1), or a parameter this large.  No useful float32 MLP gets near either; a run
# that does is only waiting to overflow.
LOSS_BLOWUP = 1e4
PARAMETER_LIMIT = 1e12
# Inputs whose 99th percentile of |x| is above this are "far outside the usual scale"
# (the initialisers assume features of about unit size; raw pixels reach 255).
INPUT_SCALE_LIMIT = 10.0
SCALE_ROWS = 256
# A layer whose weight-gradient norm is at most this fraction of the largest layer's gets
# no useful gradient: float32 keeps about 7 digits.
SILENT_GRADIENT = 1e-7


class _LastUsed:
    """``fit``'s default batch size: the network's last one (32 for a new network)."""

    def __repr__(self):
        return "<the network's last batch size, else 32>"


LAST_USED = _LastUsed()


class TrainingWarning(UserWarning):
    """Training runs but is unlikely to learn: unscaled inputs, dead or saturated layers."""


class DivergenceError(FloatingPointError):
    """Training diverged: a NaN/inf loss, a loss or parameters grown beyond all reason, or
    every unit saturated with an exactly zero gradient.

    The weights and training state were restored to the end of the last good epoch.
    """

    def __init__(self, message, epoch, learning_rate, history):
        super().__init__(message)
        self.epoch = epoch
        self.learning_rate = learning_rate
        self.history = history


@dataclass
class _FitPlan:
    """One ``fit`` call's arguments, checked and resolved."""
    X: np.ndarray
    Y: np.ndarray
    truth: object  # what accuracy compares with (see outputs.check_targets), or None
    multilabel: object  # the network's multilabel once this call trains
    epochs: int
    batch_size: object
    opt: Optimizer
    shuffle: bool
    validation: object
    verbose: int
    callbacks: list
    schedule: object
    checkpoint: object
    checkpoint_every: int
    replicas: object = None  # distributed.Replicas when fit trains over MPI, else None
    # the rows the training accuracy reads: X's rows as the caller gave them
    # (validation.rows_as_given)
    accuracy_X: object = None

    @property
    def world_size(self):
        return 1 if self.replicas is None else self.replicas.size


@dataclass
class _Run:
    """The device arrays and running checks of one ``fit`` call."""
    X_dev: object
    Y_dev: object
    params_dev: object
    state: np.ndarray
    step: np.ndarray
    state_dev: object
    step_dev: object
    probe_dev: tuple
    # (batch_size or None, rows, plain SGD or not) of the epochs, whose compiled loop the
    # probe runs; None over MPI, where the ranks split the batches (network_gradient then)
    probe_epochs: tuple | None
    accuracy_rows: object
    start_loss: float
    warned: set


def _check_sizes(sizes):
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a list of layer widths such as [784, 30, 10]; "
                        f"got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width; got {list(sizes)}")
    return [check_count(n, f"sizes[{i}]", 1) for i, n in enumerate(sizes)]


def _replica_warm_up_shape(batch_size, n):
    """(rows, batch) of ``fit``'s warm-up over MPI: two batches as given, or 64 rows for a
    full batch.  The ranks split each batch, so ``Backend.warm_up_shape``'s smaller batch
    of the same path does not apply there."""
    return min(n, 2 * batch_size if batch_size else 64), batch_size


class Network:
    """A fully connected network: sizes[0] inputs, hidden layers, sizes[-1] outputs.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first: ``[784, 30, 10]``.
    activation : str
        Hidden-layer activation: "sigmoid", "tanh", "relu" or "identity".
    output : str, optional
        Output activation: "sigmoid", "softmax", "tanh", "relu" or "identity".  Defaults to
        what fits the loss: "sigmoid" for "mse" and "binary_cross_entropy", "softmax" for
        "cross_entropy", "identity" for "mae".
    loss : str
        Per sample, averaged over the batch:

        - "mse": ½‖a − y‖², summed over the outputs (Nielsen's convention; scikit-learn,
          Keras and PyTorch average over the outputs instead); any output.
        - "mae": ‖a − y‖₁, summed over the outputs; any output.
        - "cross_entropy": −Σ y log a; needs a softmax output and targets in [0, 1].
        - "binary_cross_entropy": −Σ [y log a + (1 − y) log(1 − a)]; needs a sigmoid
          output and targets in [0, 1] (one or several outputs, multi-label included).
    seed : int, optional
        Seeds the initial weights and the shuffling; the same seed gives the same run.
    device : str
        "auto", "cpu" or "cuda" (see ``steepest.models.backend``).
    init : str, optional
        "normal", "scaled_normal", "xavier", "he" or "glorot_uniform" (scikit-learn's); by
        default "he" for ReLU networks and "scaled_normal" (N(0, 1)/√fan_in) otherwise.
    multilabel : bool, optional
        Whether each of several outputs is a yes/no label of its own (sigmoid, tanh or relu
        outputs): ``predict`` then thresholds every output and accuracy is per label.  None
        (the default) decides at the first ``fit`` whose targets are multi-hot: 0/1 rows of
        shape (n, sizes[-1]) with a sigmoid output, some with other than one 1.

    How the outputs are read (``predict``, ``predict_proba``, accuracy) is summed up in
    ``steepest.models.outputs``: an identity output gives values, one output a 0/1 label,
    several outputs a class label 0..k-1 (argmax) or, multi-label, one 0/1 per output.
    """

    _training_path = None  # what the last fit trained on (networks pickled before it: None)

    def __init__(self, sizes: Sequence[int], activation: str = "sigmoid",
                 output: str | None = None, loss: str = "mse", seed: int | None = None,
                 device: str = "auto", init: str | None = None,
                 multilabel: bool | None = None) -> None:
        self.sizes = _check_sizes(sizes)
        self._configure(activation, output, loss, device, multilabel)
        self.init = init if init is not None else default_initializer(self.activation)
        self._start_training_state(seed)
        weights, biases = initial_params(self.sizes, self.init, self._rng, self.activation)
        self._set_params(weights, biases)

    # ------------------------------------------------------------------ construction
    def _configure(self, activation, output, loss, device, multilabel=None):
        spec = lookup(LOSSES, loss, "loss")
        lookup(HIDDEN_ACTIVATIONS, activation, "activation")
        output = spec.default_output if output is None else output
        lookup(OUTPUT_ACTIVATIONS, output, "output activation")
        if output not in spec.outputs:
            raise ValueError(f"loss {loss!r} does not fit output activation {output!r}; "
                             f"use output={' or '.join(map(repr, spec.outputs))}")
        if output == "softmax" and self.sizes[-1] < 2:
            raise ValueError("output='softmax' needs at least 2 output units; got sizes[-1] = 1")
        self.activation, self.output, self.loss, self.device = activation, output, loss, device
        self.multilabel = self._check_multilabel(multilabel)
        self._backend = get_backend(device)
        self._loss_code = spec.code
        per_layer = ([HIDDEN_ACTIVATIONS[activation]] * (len(self.sizes) - 2)
                     + [OUTPUT_ACTIVATIONS[output]])
        self._activation_codes = np.array(per_layer, dtype=np.int64)
        self._size_array = np.array(self.sizes, dtype=np.int64)
        # fit and the kernels release the GIL: one thread at a time trains or reads the
        # parameters (fit holds it for the whole call, so predict waits for the end)
        self._lock = threading.RLock()

    def _check_multilabel(self, multilabel):
        if multilabel is not None and not isinstance(multilabel, (bool, np.bool_)):
            raise TypeError(f"multilabel must be True, False or None; got {multilabel!r}")
        if multilabel and (self.output in ("softmax", "identity") or self.sizes[-1] < 2):
            raise ValueError(f"multilabel=True needs several sigmoid, tanh or relu outputs; got "
                             f"output={self.output!r} with {self.sizes[-1]} output(s)")
        return None if multilabel is None else bool(multilabel)

    @property
    def _kind(self):
        """How the outputs are read: "values", "binary", "multiclass" or "multilabel"."""
        return output_kind(self.output, self.sizes[-1], self.multilabel)

    def _targets(self, y, n_samples, kind=None, name="y"):
        """(float32 targets, truth for accuracy or None): see ``outputs.check_targets``."""
        return check_targets(y, n_samples, self.output, self.sizes[-1], kind or self._kind,
                             self.loss, name)

    def _kind_for(self, y):
        """The kind a network not yet decided on multi-label reads y as: multi-label for
        multi-hot targets (see ``multilabel``)."""
        if self.multilabel is None and looks_multilabel(y, self.output, self.sizes[-1]):
            return "multilabel"
        return self._kind

    def _start_training_state(self, seed):
        """A network that has trained nothing: its seed, generator, epoch count, history."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.epochs_trained = 0
        self._log = {}  # per-epoch metrics of every epoch trained: see ``history``
        self._train_config = None  # the last fit's optimiser, batch size, schedule

    def _set_params(self, weights, biases):
        self._params = np.concatenate([p for W, b in zip(weights, biases)
                                       for p in (np.ravel(W), np.ravel(b))]).astype(np.float32)
        self._forget_optimizer_state()

    def _forget_optimizer_state(self):
        self._optimizer_name = ""  # no optimiser state yet: see _optimizer_state
        self._opt_state = np.zeros((0, self._params.size), np.float32)
        self._opt_step = np.zeros(1, np.int64)

    def reset_optimizer(self) -> None:
        """Forget the optimiser's state (velocity, moments, step count): the next ``fit``
        starts it afresh, as scikit-learn's estimators do at every ``fit``.  The optimiser's
        kind and hyper-parameters stay as the last ``fit`` left them."""
        with self._lock:
            self._forget_optimizer_state()

    @classmethod
    def from_params(cls, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike],
                    activation: str = "sigmoid", output: str | None = None, loss: str = "mse",
                    device: str = "auto", seed: int | None = None,
                    multilabel: bool | None = None) -> Network:
        """A network with the given weights (W of shape (out, in)) and biases (shape (out,))."""
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"weights and biases must be non-empty lists of equal length; got "
                             f"{len(weights)} weight and {len(biases)} bias arrays")
        weights = [np.asarray(W) for W in weights]
        biases = [np.asarray(b) for b in biases]
        sizes = [weights[0].shape[1] if weights[0].ndim == 2 else -1]
        for i, (W, b) in enumerate(zip(weights, biases)):
            if W.ndim != 2 or W.shape[1] != sizes[-1]:
                raise ValueError(f"weights[{i}] must have shape (out, {sizes[-1]}); got {W.shape}")
            if b.shape != (W.shape[0],):
                raise ValueError(f"biases[{i}] must have shape ({W.shape[0]},); got {b.shape}")
            if not (np.isfinite(W).all() and np.isfinite(b).all()):
                raise ValueError(f"weights[{i}] or biases[{i}] contains NaN or inf")
            sizes.append(W.shape[0])
        net = cls.__new__(cls)
        net.sizes = _check_sizes(sizes)
        net._configure(activation, output, loss, device, multilabel)
        net.init = None
        net._start_training_state(seed)
        net._set_params(weights, biases)
        return net

    # ------------------------------------------------------------------ parameters
    def _views(self):
        views, offset = [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            W = self._params[offset:offset + n_out * n_in].reshape(n_out, n_in)
            offset += n_out * n_in
            views.append((W, self._params[offset:offset + n_out]))
            offset += n_out
        return views

    @property
    def weights(self) -> list[np.ndarray]:
        """Per-layer weight matrices, float32 of shape (out, in): views of the live parameters."""
        return [W for W, _ in self._views()]

    @property
    def biases(self) -> list[np.ndarray]:
        """Per-layer bias vectors, float32 of shape (out,): views of the live parameters."""
        return [b for _, b in self._views()]

    @property
    def n_parameters(self) -> int:
        """Number of weights and biases."""
        return int(self._params.size)

    @property
    def training_path(self) -> str | None:
        """Which kernels the last ``fit`` trained on and why, as its ``History`` records it:
        on the CPU "fused: …" (one sample at a time through the network, one thread) or
        "tiled: …" (passes over each batch shared among the threads); on CUDA "one-block:
        …" or "tiled: …".  None before any ``fit``."""
        return self._training_path

    @property
    def backend_device(self) -> str:
        """The device the kernels run on ("cpu" or "cuda"), whatever ``device`` asked for."""
        return self._backend.name

    def __getstate__(self):
        # the backend holds a module of kernels: pickle its device name and look it up again
        return {key: value for key, value in self.__dict__.items()
                if key not in ("_backend", "_lock")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("multilabel", None)  # pickled before multi-label existed
        try:
            self._backend = get_backend(self.device)
        except ValueError as exc:  # pickled with device="cuda", unpickled where none is
            warnings.warn(f"this Network was pickled with device={self.device!r}, which is not "
                          f"available here ({exc}); it runs on the CPU (device='cpu')",
                          RuntimeWarning, stacklevel=2)
            self.device = "cpu"
            self._backend = get_backend("cpu")
        self._lock = threading.RLock()

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activation!r}, output={self.output!r}, "
                f"loss={self.loss!r}, device={self.backend_device!r})")

    # ------------------------------------------------------------------ inference
    def forward(self, X: ArrayLike, verbose: int = 0) -> np.ndarray:
        """Output activations for every row of X: float32 (n, sizes[-1]).

        verbose=1 shows a progress bar over X of more than one chunk (see EVAL_CHUNK) when output
        is a terminal.
        """
        X = self._inference_features(X)
        out = np.empty((n_rows(X), self.sizes[-1]), np.float32)
        with self._lock:
            for start, stop in _row_chunks(n_rows(X), self._chunk_rows(), verbose,
                                           "forward"):
                self._forward(row_slice(X, start, stop), out[start:stop])
        if not np.isfinite(out).all():
            check_finite(X)  # a bad input, or a finite one whose sums overflow
        return out

    def _inference_features(self, X, name="X"):
        """X checked for inference: its finiteness before the kernels, or, where a bad input
        always shows in the outputs (``Backend.bad_inputs_show``), after them when they
        are not finite (``check_finite``), which saves a pass over X."""
        return check_features(X, self.sizes[0], name, finite=not self._backend.bad_inputs_show)

    def _chunk_rows(self):
        """Rows per inference call: EVAL_CHUNK, or fewer where the layers are wide."""
        return int(max(1, min(EVAL_CHUNK, EVAL_BYTES // (4 * sum(self.sizes)))))

    def _forward(self, X, out):
        """The outputs for checked X into ``out`` (rows of a C-contiguous float32 array: on
        the CPU the kernel writes there directly)."""
        k = self._backend
        out_dev = k.to_device(out)
        k.kernels.network_forward(out_dev, k.to_device(self._params), self._size_array,
                                  self._activation_codes, k.to_device(X))
        k.to_host(out, out_dev)

    def predict_proba(self, X: ArrayLike, verbose: int = 0) -> np.ndarray:
        """Class probabilities, float32.

        Rows sum to 1 and their argmax is ``predict``'s label: a softmax output as it is;
        other outputs mapped from their range to [0, 1] (σ as it is, (tanh + 1)/2) and
        rescaled to sum to 1; one output gives (n, 2), P(0) and P(1).  A multi-label network
        gives each label's probability, (n, sizes[-1]).  ``forward`` gives the raw outputs;
        an identity output has no probabilities (ValueError).
        """
        return probabilities(self.forward(X, verbose), self.output, self._kind)

    def predict(self, X: ArrayLike, verbose: int = 0) -> np.ndarray:
        """Labels, or values for an identity output (see ``steepest.models.outputs``).

        Several outputs: the class label 0..k-1 of the largest, (n,); multi-label: 0/1 per
        output, (n, k).  One output: 1 where it is above the middle of its range (0.5 for
        sigmoid, 0 for tanh), else 0.  An identity output is a regressor: its outputs as
        they are, shape (n,) for one output, else (n, sizes[-1]).
        """
        return predictions(self.forward(X, verbose), self.output, self._kind)

    def evaluate(self, X: ArrayLike, y: ArrayLike, verbose: int = 0) -> dict[str, float]:
        """Mean loss and, for labels, accuracy: ``{"loss": float, "accuracy": float}``.

        Accuracy is the share of labels predicted right (per label for a multi-label network,
        which also reports ``subset_accuracy``, the share of samples with every label right);
        it is left out for targets that are values rather than labels (regression, soft
        targets).  verbose=1 shows a progress bar over X of more than one chunk (EVAL_CHUNK)
        when output is a terminal.
        """
        X = self._inference_features(X)
        kind = self._kind_for(y)
        Y, truth = self._targets(y, n_rows(X), kind)
        with self._lock:
            result = self._evaluate(X, Y, truth, verbose, kind)
        if not np.isfinite(result["loss"]):
            check_finite(X)
        return result

    def _evaluate(self, X, Y, truth, verbose=0, kind=None):
        k = self._backend
        kind = kind or self._kind
        loss_sum, scores = 0.0, {}
        n = n_rows(X)
        for start, stop in _row_chunks(n, self._chunk_rows(), verbose, "evaluate"):
            out = np.empty((stop - start, self.sizes[-1]), np.float32)
            out_dev = k.to_device(out)
            # the exact loss (cross-entropies from the pre-activations), a mean over the
            # chunk's rows; weighting by rows gives the mean over X
            loss = k.kernels.network_evaluate(
                out_dev, k.to_device(self._params), self._size_array, self._activation_codes,
                self._loss_code, k.to_device(row_slice(X, start, stop)),
                k.to_device(Y[start:stop]))
            k.to_host(out, out_dev)
            loss_sum += float(loss) * (stop - start)
            if truth is not None:
                for key, value in accuracies(out, truth[start:stop], self.output, kind).items():
                    scores[key] = scores.get(key, 0.0) + value * (stop - start)
        return {"loss": loss_sum / n, **{key: total / n for key, total in scores.items()}}

    # ------------------------------------------------------------------ training
    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 1,
            batch_size: int | None | _LastUsed = LAST_USED,
            learning_rate: float | None = None, shuffle: bool = True,
            validation_data: tuple[ArrayLike, ArrayLike] | None = None,
            validation_split: float | None = None, verbose: int = 0,
            callbacks: Sequence[Callable[[int, dict], Any]] | None = None,
            lr_schedule: Schedule | str | Callable[[int, float, dict], float] | None = None,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
            optimizer: str | Optimizer | type[Optimizer] | None = None,
            comm: Any = None, sync: str = "gradient", average_every: int | None = None,
            sharded: bool = False, threads: int | None = None) -> History:
        """Train by gradient descent; returns a ``History`` of this call's epochs.

        Each epoch is one compiled kernel call; validation, schedules, callbacks and
        checkpoints run in Python between epochs.  The network counts the epochs it has
        trained (``epochs_trained``, saved in checkpoints): epoch numbers in the history,
        the schedules, the callbacks and error messages continue from that count, as
        Keras's ``initial_epoch`` does.  The optimiser (with its state), learning rate,
        batch size and schedule of the last call stay with the network: a later call, or
        one after ``Network.load``, continues with them unless it passes others.

        Parameters
        ----------
        X : array (n, sizes[0])
            Inputs; converted to float32 (integers by value, without rescaling).
        y : array
            Integer class labels (n,) (one-hot internally) or float targets (n, sizes[-1]).
        epochs : int
            Passes over the data in this call (0 trains nothing).
        batch_size : int or None
            1: per-sample SGD; k: mini-batch SGD, the last batch of an epoch may be shorter;
            None (or ≥ n): full-batch gradient descent, one step per epoch.  By default the
            batch size this network last trained with, else 32.
        learning_rate : float, optional
            η > 0; for plain SGD θ ← θ − η∇L, where L is the batch-mean loss.  None takes
            the rate this network last trained with when the optimiser is the same kind,
            else the optimiser's default (0.1 for SGD, 1e-3 for Adam, …).
        shuffle : bool
            Reshuffle the samples each epoch (seeded by the network's ``seed``); False
            trains in the given order.
        validation_data : (X_val, y_val), optional
            Evaluated after each epoch: ``val_loss`` and ``val_accuracy`` in the history.
        validation_split : float in (0, 1), optional
            Hold out this fraction of (X, y) — the last rows, before any shuffling — as
            validation data.  Not with ``validation_data``.
        verbose : int
            0: silent; 1: a progress bar over epochs (only when output is a terminal).
        callbacks : list, optional
            ``steepest.EarlyStopping``, other ``Callback`` objects, or callables
            ``f(epoch, metrics)``; one returning True stops training after that epoch.
        lr_schedule : Schedule, name or callable, optional
            Gives each epoch's rate: ``StepDecay``, ``ExponentialDecay``, ``InverseScaling``,
            ``ReduceOnPlateau``, or ``f(epoch, learning_rate, history_dict) -> float``
            (``epoch`` counts all epochs the network trained, from 1; ``history_dict``
            holds them); ``f(epoch, learning_rate)`` (Keras's form) and ``f(epoch)`` work too.
            None continues the built-in schedule of the last call, if any;
            ``"constant"`` ends it.  A callable applies to this call only.
        checkpoint : str or os.PathLike, optional
            Save the network (parameters and training state, see ``save``) to this path
            every ``checkpoint_every`` epochs and when training ends.  ``Network.load`` of
            that file followed by ``fit`` with the remaining epochs ends with the same
            weights as an uninterrupted run (bit-identical on the CPU).
        checkpoint_every : int
            Epochs between checkpoints.
        optimizer : str or steepest.optimizers.Optimizer, optional
            "sgd", "momentum", "adagrad", "rmsprop", "adam", or a configured object such as
            ``steepest.optimizers.Adam(beta1=0.8, weight_decay=1e-4)``.  None continues the
            optimiser of the last call (SGD for a new network).  The optimiser's state
            (velocity, moments, step count) stays with the network, so successive ``fit``
            calls and checkpoints continue it; a different optimiser starts from fresh state.
        comm : mpi4py communicator, optional
            Train over the processes of ``comm`` (e.g. ``MPI.COMM_WORLD`` in a script run by
            ``mpiexec -n K``; needs ``pip install 'steepest[mpi]'``, see
            ``steepest.distributed``).  Every rank calls ``fit`` with the same X, y and
            arguments (with ``sync="average"``, see ``sharded``); the network starts from
            rank 0's weights, optimiser state and shuffling state.  None (the default):
            this process alone.  On the CPU, or with device="cuda" one GPU per rank (the
            rank's number on its node modulo the GPUs), the reductions going through host
            memory.  A checkpoint written by a run on any number of ranks resumes on any
            number, or on one process.
        sync : str
            How the ranks train together.  "gradient": synchronous data parallelism; each
            global batch of ``batch_size`` rows (the same batches as one process) is split
            across the ranks, one Allreduce per batch sums their gradients, and every rank
            applies the same update, so the weights equal a one-process ``fit`` to float32
            rounding.  ``batch_size`` (or, full batch, the number of rows) must be at least
            the number of ranks.  Only rank 0 writes ``checkpoint``, shows the progress bar
            and warns; the history (the same on every rank) records ``world_size``.
            "average": local SGD; each rank trains its own copy on its own rows with the
            single-process epoch kernel, and one Allreduce every ``average_every`` samples
            and at each epoch's end replaces every rank's parameters and optimiser state by
            their mean, so the ranks end each epoch identical.  For per-sample and
            small-batch SGD, where a reduction per step costs more than the step; it learns
            like one process, not to the same weights (see ``steepest.distributed``).
        average_every : int, optional
            sync="average" only: the samples each rank trains between averagings (per rank,
            not over all ranks), a multiple of ``batch_size``; None (the default) averages
            only at the end of each epoch.
        sharded : bool
            sync="average" only.  False (the default): every rank passes the same full X
            and y, and each epoch's shuffled rows are shared out between the ranks, a
            contiguous block of the order each.  True: X and y are this rank's own rows
            (e.g. ``steepest.distributed.shard(X, comm)``, or rows it loaded itself), used
            as given; the ranks' row counts may differ.
        threads : int, optional
            The most CPU threads this call trains on (Numba's threads, restored after the
            call); None: all that Numba has (``numba.get_num_threads()``).  Large batches
            and wide layers share each batch's work among them (the tiled path, see
            ``History.training_path``); the weights are the same bits for any number of
            threads.

        Raises
        ------
        DivergenceError
            The loss became NaN or inf or grew beyond all reason, the parameters grew
            beyond ``PARAMETER_LIMIT``, or every unit saturated; the parameters and training
            state are those of the last good epoch.

        Warns
        -----
        TrainingWarning
            Training runs but cannot learn well: inputs far outside the usual scale, or
            layers that no gradient reaches (dead or saturated units).  Each warning is
            also recorded in ``History.warnings``.
        """
        distributed.check_sync(sync)
        if not isinstance(sharded, (bool, np.bool_)):
            raise TypeError(f"sharded must be True or False; got {sharded!r}")
        if sharded and sync != "average":
            raise ValueError(f"sharded=True needs sync='average' (sync={sync!r} splits the "
                             f"batches of the one data set every rank passes)")
        threads = check_threads(threads)
        replicas = None if comm is None else \
            distributed.Replicas(comm, sync, average_every, bool(sharded))

        def make_plan():
            # a dense X of mostly zeros is compacted once when the call reads it twice or more
            n_epochs = check_count(epochs, "epochs", 0)
            compact = self._backend.sparse_rows and n_epochs > 1
            data = self._training_data(X, y, validation_data, validation_split, compact,
                                       n_epochs > 0)
            plan = self._plan_fit(data, n_epochs, batch_size, learning_rate, shuffle, verbose,
                                  callbacks, lr_schedule, checkpoint, checkpoint_every,
                                  optimizer, replicas)
            distributed.check_average_every(average_every, sync, plan.batch_size)
            return plan

        with self._lock:
            if replicas is None:
                plan = make_plan()
                with numba_threads(threads):
                    return self._run_fit(plan)
            # an error on any rank raises on every rank, before any work
            plan = replicas.agree_on(make_plan, self._plan_signature)
            replicas.place(self._backend)  # this rank's GPU, before any device work
            with replicas.training(), numba_threads(threads):  # a lone failure aborts
                self._share_training_state(plan)                # every rank, never hangs one
                return self._run_fit(plan)

    def _training_data(self, X, y, validation_data, validation_split, compact, trains):
        """The checked training arrays, the network's multilabel once it trains on them, the
        validation set and the rows the training accuracy reads (``rows_as_given``):
        (X, Y, truth, multilabel, validation, accuracy_X)."""
        given = X
        X = training_features(X, self.sizes[0], compact, finite_in_epoch=trains)
        accuracy_X = rows_as_given(given, X)
        kind = self._kind_for(y)
        Y, truth = self._targets(y, n_rows(X), kind)
        validation = self._validation_set(validation_data, validation_split, X, Y, truth, kind)
        if validation_split is not None:
            n_train = n_rows(X) - n_rows(validation[0])
            X, Y = row_slice(X, 0, n_train), Y[:n_train]
            accuracy_X = row_slice(accuracy_X, 0, n_train)
            truth = None if truth is None else truth[:n_train]
        multilabel = True if kind == "multilabel" else self.multilabel
        return X, Y, truth, multilabel, validation, accuracy_X

    def _plan_fit(self, data, epochs, batch_size, learning_rate, shuffle, verbose, callbacks,
                  lr_schedule, checkpoint, checkpoint_every, optimizer, replicas=None):
        """Every other argument checked and resolved against the network's training state,
        before anything changes: a ``_FitPlan`` (``data`` from ``_training_data``)."""
        X, Y, truth, multilabel, validation, accuracy_X = data
        epochs = check_count(epochs, "epochs", 0)
        if learning_rate is not None:
            learning_rate = check_positive_real(learning_rate, "learning_rate")
        opt = self._resolve_optimizer(optimizer, learning_rate)
        if batch_size is LAST_USED:
            batch_size = DEFAULT_BATCH_SIZE if self._train_config is None \
                else self._train_config["batch_size"]
        if batch_size is not None:
            batch_size = check_count(batch_size, "batch_size", 1)
            if replicas is None or not replicas.sharded:  # a rank's rows are not all rows
                batch_size = min(batch_size, n_rows(X))
        if checkpoint is not None:
            checkpoint = os.fspath(checkpoint)
            checkpoint_every = check_count(checkpoint_every, "checkpoint_every", 1)
        schedule = self._resolve_schedule(lr_schedule)
        callbacks = _check_callbacks(callbacks)
        if replicas is not None:
            replicas.check_batch(n_rows(X) if batch_size is None else batch_size,
                                 given=batch_size, n_rows=n_rows(X))
            if not replicas.lead:  # rank 0 owns the progress bar and the files
                verbose, checkpoint = 0, None
        return _FitPlan(X, Y, truth, multilabel, epochs, batch_size, opt, bool(shuffle), validation,
                        verbose, callbacks, schedule, checkpoint, checkpoint_every, replicas,
                        accuracy_X)

    def _plan_signature(self, plan):
        """What must be the same on every rank of a distributed fit, keyed by the argument
        that sets it: the architecture, the training state's epoch count, the arguments, and
        X and y (their sizes, and a checksum of up to 32 evenly spaced rows; with
        ``sharded=True``, each rank's own rows, only the widths of y's rows)."""
        replicas, n = plan.replicas, n_rows(plan.X)
        sync = {"sync": replicas.sync, "average_every": replicas.average_every,
                "sharded": replicas.sharded}
        rows = np.unique(np.linspace(0, n - 1, min(n, 32)).astype(np.int64))
        sample = take_rows(plan.X, rows)
        parts = (sample.indices, sample.data) if isinstance(sample, SparseRows) else (sample,)
        schedule = plan.schedule
        signature = {"network": repr(self), "epochs_trained": self.epochs_trained,
                "epochs": plan.epochs, "batch_size": plan.batch_size,
                "optimizer": plan.opt.to_config(), "shuffle": plan.shuffle,
                "lr_schedule": schedule.to_config() if isinstance(schedule, Schedule)
                else type(schedule).__name__,
                "X": (n, zlib.crc32(b"".join(np.ascontiguousarray(p).tobytes() for p in parts))),
                "y": (plan.Y.shape, zlib.crc32(np.ascontiguousarray(plan.Y[rows]).tobytes())),
                "validation_data": None if plan.validation is None
                else n_rows(plan.validation[0]), **sync}
        if replicas.sharded:  # the rows are each rank's own
            # but every rank measures (and pools) the same metrics
            signature.update(X="this rank's rows", y=(plan.Y.shape[1:], plan.truth is None),
                             validation_data=plan.validation is not None)
        return signature

    def _share_training_state(self, plan):
        """Rank 0's parameters, optimiser state and step, and shuffling generator on every
        rank (Horovod's broadcast of the initial state): ranks whose networks were seeded
        differently, or not at all, start as one and stay one."""
        replicas = plan.replicas
        state, step = self._optimizer_state(plan.opt)
        for array in (self._params, state, step):
            replicas.broadcast(array)
        self._rng.bit_generator.state = replicas.broadcast_object(self._rng.bit_generator.state)
        if replicas.sync == "average":
            replicas.share_rows(n_rows(plan.X))

    def _resolve_optimizer(self, optimizer, learning_rate):
        """The call's optimiser: as given, else the network's last one; the learning rate
        as given, else the last one for the same kind of optimiser, else its default."""
        last = None if self._train_config is None else \
            optimizer_from_config(self._train_config["optimizer"])
        if optimizer is None and last is not None:
            return last if learning_rate is None else last.with_learning_rate(learning_rate)
        opt = get_optimizer(optimizer, learning_rate)
        if learning_rate is None and last is not None and not isinstance(optimizer, Optimizer) \
                and last.name == opt.name:
            opt = opt.with_learning_rate(last.learning_rate)
        return opt

    def _resolve_schedule(self, lr_schedule):
        """The call's schedule (a Schedule or callable), else the network's last one."""
        if lr_schedule is None:
            config = None if self._train_config is None else self._train_config["lr_schedule"]
            return None if config is None else schedule_from_config(config)
        if isinstance(lr_schedule, str):
            lr_schedule = lookup(SCHEDULES, lr_schedule, "lr_schedule")()
        if isinstance(lr_schedule, Schedule):
            return lr_schedule
        if callable(lr_schedule):
            return schedule_function(lr_schedule)
        raise TypeError(f"lr_schedule must be a Schedule, a name ({', '.join(SCHEDULES)}) or a "
                        f"callable f(epoch, learning_rate, history); got {lr_schedule!r}")

    def _remember_training(self, plan):
        """Keep the call's configuration with the network (and in its checkpoints)."""
        schedule = plan.schedule
        config = schedule.to_config() if isinstance(schedule, Schedule) else None
        self.multilabel = plan.multilabel
        self._train_config = {"optimizer": plan.opt.to_config(), "batch_size": plan.batch_size,
                              "shuffle": plan.shuffle,
                              "lr_schedule": None if isinstance(schedule, Constant) else config}

    def _run_fit(self, plan):
        """The training phases: set up, warm up, epochs, finish."""
        history = History(self.backend_device, world_size=plan.world_size)
        history.training_path = self._training_path = self._path_of(plan)
        self._remember_training(plan)
        run = self._start_run(plan, history)
        for callback in plan.callbacks:
            getattr(callback, "on_train_begin", lambda net: None)(self)
        progress = progress_bar(plan.epochs, plan.verbose, unit="epoch")
        saved_epoch = None  # the epoch the checkpoint file holds, once this call wrote it
        try:
            for _ in range(plan.epochs):
                metrics = self._train_epoch(plan, run, history)
                if plan.checkpoint is not None and \
                        self.epochs_trained % plan.checkpoint_every == 0:
                    self.save(plan.checkpoint)
                    saved_epoch = self.epochs_trained
                if progress is not None:
                    progress.set_postfix({key: f"{v:.4g}" for key, v in metrics.items()
                                          if key in ("loss", "val_accuracy", "samples_per_s")})
                    progress.update(1)
                # every callback sees every epoch, even after one of them asked to stop
                stop = any([bool(callback(metrics["epoch"], dict(metrics)))
                            for callback in plan.callbacks])
                if plan.replicas is not None:  # all ranks stop, or none
                    stop = plan.replicas.any(stop)
                if stop:
                    break
        finally:
            if progress is not None:
                progress.close()
        for callback in plan.callbacks:
            getattr(callback, "on_train_end", lambda net: None)(self)
        # after the callbacks, which may have gone back to an earlier epoch (EarlyStopping),
        # or after a stop between checkpoint_every epochs
        if plan.checkpoint is not None and len(history) and self.epochs_trained != saved_epoch:
            self.save(plan.checkpoint)
        return history

    def _path_of(self, plan):
        """Which kernels the plan's epochs run on and why (``Backend.training_path``)."""
        if plan.replicas is not None and plan.replicas.sync == "gradient":
            return (f"distributed gradient mode: one packed gradient and update per step on "
                    f"each of {plan.world_size} ranks")
        return self._backend.training_path(self.sizes, plan.batch_size, n_rows(plan.X),
                                           plan.opt.plain_sgd)

    def _start_run(self, plan, history):
        """Device copies, the warm-up compile, the probe batch, the first checks: a _Run."""
        k = self._backend
        X, Y, n = plan.X, plan.Y, n_rows(plan.X)
        state, step = self._optimizer_state(plan.opt)
        if plan.epochs:
            history.warmup_seconds = self._warm_up(X, Y, plan.batch_size, plan.opt,
                                                   plan.replicas)
        # A fixed probe batch: after each epoch, its per-layer gradient norms go into the
        # history (vanishing/exploding gradients show there) and reveal a saturated network.
        probe = min(n, PROBE_ROWS)
        run = _Run(X_dev=k.to_device(X), Y_dev=k.to_device(Y), params_dev=k.to_device(self._params),
                   state=state, step=step, state_dev=k.to_device(state), step_dev=k.to_device(step),
                   probe_dev=(k.to_device(row_slice(X, 0, probe)), k.to_device(Y[:probe])),
                   probe_epochs=None if plan.replicas is not None else (plan.batch_size, n,
                                                                        plan.opt.plain_sgd),
                   accuracy_rows=None, start_loss=0.0, warned=set())
        if plan.truth is not None:
            run.accuracy_rows = _accuracy_groups(plan.accuracy_X, Y, plan.truth,
                                                 self.sizes[-1])
        if plan.epochs:
            run.start_loss = self._probe_gradient(run.params_dev, *run.probe_dev,
                                                  run.probe_epochs)[0]
            self._check_input_scale(X, run, history)
        return run

    def _train_epoch(self, plan, run, history):
        """One epoch: its rate, its one kernel call, the divergence check, its metrics."""
        k = self._backend
        epoch = self.epochs_trained + 1
        rate = plan.opt.learning_rate if plan.schedule is None else check_positive_real(
            plan.schedule(epoch, plan.opt.learning_rate, self._log),
            "the learning rate from lr_schedule")
        n = n_rows(plan.X)
        run_epoch = self._epoch_runner(run.X_dev, run.Y_dev, n, plan.batch_size, plan.opt, rate,
                                       plan.replicas, host=(plan.X, plan.Y))
        last_good = self._training_snapshot()
        averaged = plan.replicas is not None and plan.replicas.sync == "average"
        if averaged:  # this rank's rows of the epoch
            order = plan.replicas.epoch_order(self._rng, n, plan.shuffle)
        else:
            order = self._rng.permutation(n) if plan.shuffle else np.arange(n)
        start = time.perf_counter()
        loss = float(run_epoch(run.params_dev, run.state_dev, run.step_dev, order))
        k.to_host(self._params, run.params_dev)
        k.to_host(run.state, run.state_dev)
        k.to_host(run.step, run.step_dev)
        seconds = time.perf_counter() - start
        probe_loss, norms, moving = self._probe_gradient(run.params_dev, *run.probe_dev,
                                                         run.probe_epochs)
        problem = self._divergence(loss, probe_loss, moving, run.start_loss)
        if plan.replicas is not None:  # every rank goes on, or every rank raises
            problem = plan.replicas.first_problem(problem)
        if problem is not None:
            self._restore_training_snapshot(last_good)
            check_finite(plan.X)  # a NaN or inf input shows here first (training_features)
            raise DivergenceError(
                f"training diverged in epoch {epoch}: {problem} at learning_rate={rate}; the "
                f"weights were restored to the end of epoch {epoch - 1}. Try a smaller "
                f"learning rate.", epoch, rate, history)
        self._check_gradient_flow(probe_loss, norms, run, history)
        self.epochs_trained = epoch
        # the samples of every rank: sharded ranks each train their own
        samples = sum(plan.replicas.rows_per_rank) if averaged else n
        pool = plan.replicas.pooled if averaged and plan.replicas.sharded else None
        metrics = self._epoch_metrics(epoch, loss, seconds, samples, rate, norms,
                                      run.accuracy_rows, plan.validation, pool)
        self._record_epoch(history, metrics)
        return metrics

    def _epoch_metrics(self, epoch, loss, seconds, n, rate, norms, accuracy_rows, validation,
                       pool=None, right=None):
        """A trained epoch's metrics: its loss, time, samples/s over ``n`` rows, learning rate
        and probe's gradient norms, the accuracy on ``accuracy_rows`` (groups of blocks of
        (X, Y, truth), ``_accuracy_groups``, or None) and the metrics on ``validation`` (or
        None) as val_…  With ``pool`` (sharded MPI ranks, each measuring its own rows), the
        accuracy and the validation metrics are ``pool(metrics, rows)``: pooled over the
        ranks.  ``right``: the rows of ``accuracy_rows`` predicted right, where the caller
        has counted them (``_training_accuracy``; a sweep counts on its threads)."""
        metrics = {"epoch": epoch, "loss": loss, "seconds": seconds,
                   "samples_per_s": n / seconds if seconds > 0 else float("inf"),
                   "learning_rate": rate, "grad_norms": norms}
        if accuracy_rows is not None:
            rows = sum(len(truth) for group in accuracy_rows for _, _, truth in group)
            if right is None:
                right = self._training_accuracy(accuracy_rows)
            accuracy = {"accuracy": right / rows}
            metrics.update(accuracy if pool is None else pool(accuracy, rows))
        if validation is not None:
            val = self._evaluate(*validation)
            if pool is not None:
                val = pool(val, n_rows(validation[0]))
            metrics.update({f"val_{key}": value for key, value in val.items()})
        return metrics

    def _training_accuracy(self, groups):
        """The rows predicted right in ``groups`` of blocks (``_accuracy_groups``), each
        block's accuracy weighted by its rows and added in block order, so the same bits
        however the blocks are grouped."""
        right = 0.0
        for group in groups:
            for block_right in self._right_in_blocks(group):
                right += block_right
        return right

    def _right_in_blocks(self, blocks):
        """Each block's accuracy × its rows, their outputs from one kernel call
        (``network_forward_blocks`` shares all the blocks' rows among the threads at once)."""
        k = self._backend
        outs = [np.empty((len(truth), self.sizes[-1]), np.float32) for _, _, truth in blocks]
        outs_dev = [k.to_device(out) for out in outs]
        k.kernels.network_forward_blocks(outs_dev, k.to_device(self._params), self._size_array,
                                         self._activation_codes,
                                         [k.to_device(X) for X, _, _ in blocks])
        rights = []
        for out, out_dev, (_, _, truth) in zip(outs, outs_dev, blocks):
            k.to_host(out, out_dev)
            rights.append(accuracies(out, truth, self.output, self._kind)["accuracy"]
                          * len(truth))
        return rights

    def _record_epoch(self, history, metrics):
        """An epoch's metrics into this call's ``history`` and the network's own log."""
        history.append(**metrics)
        for key, value in metrics.items():
            self._log.setdefault(key, []).append(value)

    def _divergence(self, loss, probe_loss, moving, start_loss):
        """Why training cannot go on after this epoch, or None."""
        if not (np.isfinite(loss) and np.isfinite(self._params).all()):
            return f"the loss became {loss}"
        if loss > LOSS_BLOWUP * max(start_loss, 1.0):
            return f"the loss grew to {loss:.4g} from {start_loss:.4g} at the start of fit"
        largest = float(np.abs(self._params).max())
        if largest > PARAMETER_LIMIT:
            return f"a parameter grew to {largest:.4g}"
        if probe_loss > 0 and not moving:
            # Every unit saturated (σ′ = a(1 − a) is exactly 0 in float32) or dead: the
            # gradient is exactly zero while the loss is not, so no step can ever help.
            return (f"every unit saturated: the gradient is exactly zero while the "
                    f"loss is {probe_loss:.4g}")
        return None

    def _warn(self, key, message, run, history):
        """A TrainingWarning, once per fit call and kind, also kept in the history."""
        if key in run.warned:
            return
        run.warned.add(key)
        history.warnings.append(message)
        warnings.warn(message, TrainingWarning, stacklevel=5)

    def _check_input_scale(self, X, run, history):
        """Warn when inputs lie far outside the scale the initialisers assume (~1)
        (``input_scale_warning``)."""
        message = input_scale_warning(X, self.sizes[0])
        if message is not None:
            self._warn("scale", message, run, history)

    def _check_gradient_flow(self, probe_loss, norms, run, history):
        """Warn when no gradient reaches some layers' weights while the loss is not zero:
        their units (or those above them) are dead or saturated, so they stopped learning.

        "No gradient": exactly zero, or below SILENT_GRADIENT of the largest layer's norm,
        where a float32 step can no longer move weights of ordinary size.
        """
        largest = max(norms)
        silent = [i + 1 for i, norm in enumerate(norms) if norm <= SILENT_GRADIENT * largest]
        if probe_loss > 0 and silent:
            self._warn("silent", f"no gradient reaches the weights of layer(s) "
                       f"{', '.join(map(str, silent))} (their gradient is zero or below "
                       f"{SILENT_GRADIENT:g} of the largest layer's while the loss is "
                       f"{probe_loss:.4g}): the hidden units are dead (ReLU) or "
                       f"saturated (sigmoid/tanh), so those layers stopped learning. Try "
                       f"scaled inputs or a smaller learning rate.", run, history)

    def _training_snapshot(self):
        """Copies of everything an epoch changes, for going back to the end of this one."""
        return (self._params.copy(), self._opt_state.copy(), self._opt_step.copy(),
                self._rng.bit_generator.state, self.epochs_trained,
                len(self._log.get("epoch", [])))

    def _restore_training_snapshot(self, snapshot):
        params, state, step, rng_state, epochs_trained, log_length = snapshot
        self._params[...] = params
        self._opt_state[...] = state
        self._opt_step[...] = step
        self._rng.bit_generator.state = rng_state
        self.epochs_trained = epochs_trained
        for values in self._log.values():
            del values[log_length:]

    @property
    def history(self) -> History:
        """A ``History`` of every epoch this network has trained, across ``fit`` calls and
        checkpoints (what the schedules read)."""
        history = History(self.backend_device)
        history.history = {key: list(values) for key, values in self._log.items()}
        return history

    def _validation_set(self, validation_data, validation_split, X, Y, truth, kind):
        """(X_val, Y_val, truth_val) from validation_data or validation_split, or None."""
        if validation_data is not None and validation_split is not None:
            raise ValueError("give validation_data or validation_split, not both")
        if validation_split is not None:
            validation_split = check_fraction(validation_split, "validation_split")
            n = n_rows(X)
            n_val = int(round(n * validation_split))
            if not 0 < n_val < n:
                raise ValueError(f"validation_split={validation_split} of {n} samples leaves "
                                 f"{n_val} for validation and {n - n_val} for training")
            X_val = row_slice(X, n - n_val, n)
            check_finite(X_val)  # the epochs, which would find it, never read these rows
            return X_val, Y[-n_val:], None if truth is None else truth[-n_val:]
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_val = check_features(validation_data[0], self.sizes[0], "validation_data[0]")
        Y_val, truth_val = self._targets(validation_data[1], n_rows(X_val), kind,
                                         "validation_data[1]")
        return X_val, Y_val, truth_val

    def _warm_up(self, X, Y, batch_size, opt, replicas=None):
        """Compile (or load from cache) the epoch kernel on a few samples and scratch copies
        of the parameters and optimiser state, so epoch 1's samples/s measures training, not
        the compiler."""
        k = self._backend
        tic = time.perf_counter()
        # the fewest rows that take the epoch's kernel and path (a large or full batch as a
        # smaller one, not a whole epoch)
        few, batch = (k.warm_up_shape(self.sizes, batch_size, n_rows(X)) if replicas is None
                      else _replica_warm_up_shape(batch_size, n_rows(X)))
        # average mode runs the single-process kernels between its averagings: those
        run = self._epoch_runner(k.to_device(row_slice(X, 0, few)), k.to_device(Y[:few]), few,
                                 batch, opt, opt.learning_rate, replicas, averaging=False,
                                 host=(row_slice(X, 0, few), Y[:few]))
        state, step = self._optimizer_state(opt)
        run(k.to_device(self._params.copy()), k.to_device(state.copy()),
            k.to_device(step.copy()), np.arange(few))
        return time.perf_counter() - tic

    def _optimizer_state(self, opt):
        """The network's (state, step) arrays for ``opt``; fresh zeros for a new optimiser."""
        if self._optimizer_name != opt.name or self._opt_state.shape != (opt.n_state_slots,
                                                                         self.n_parameters):
            self._optimizer_name = opt.name
            self._opt_state = opt.new_state(self.n_parameters)
            self._opt_step = np.zeros(1, np.int64)
        return self._opt_state, self._opt_step

    def gradient_norms(self, X: ArrayLike, y: ArrayLike) -> list[float]:
        """‖∂L/∂Wˡ‖ (Frobenius) for each layer l on the batch (X, y), input layer first.

        The first layers' norms far below the last's is the vanishing-gradient picture.
        """
        X = check_features(X, self.sizes[0])
        Y, _ = self._targets(y, n_rows(X), self._kind_for(y))
        k = self._backend
        with self._lock:
            return self._probe_gradient(k.to_device(self._params), k.to_device(X),
                                        k.to_device(Y))[1]

    def _probe_gradient(self, params_dev, X_dev, Y_dev, epochs=None, sweep=False):
        """(batch loss, per-layer weight-gradient norms, whether any gradient entry — weight
        or bias — is non-zero) at the backend's current parameters.  ``epochs``: (batch_size
        or None, rows, plain SGD) of the epochs it probes, whose code it then runs (fit's,
        or with ``sweep`` a sweep's: what they compiled); None: ``network_gradient``."""
        k = self._backend
        grads = np.empty_like(self._params)
        grads_dev = k.to_device(grads)
        shape = (self._size_array, self._activation_codes, self._loss_code, X_dev, Y_dev)
        gradient = k.gradient_for_sweeps if sweep else k.gradient_for_epochs
        loss = float(k.kernels.network_gradient(grads_dev, params_dev, *shape) if epochs is None
                     else gradient(grads_dev, params_dev, *shape, *epochs))
        k.to_host(grads, grads_dev)
        norms, offset = [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            # float64 sum of squares: thousands of float32 terms of very different sizes.
            # Not np.linalg.norm: its BLAS dot wakes OpenBLAS's threads, which then spin
            # for a while on the cores the next epoch's threads need (the tiled path of
            # 784-128-64-10 at batch 128 ran at half speed after it, 2-core machine)
            weights = grads[offset:offset + n_out * n_in]
            norms.append(float(np.sqrt(np.sum(np.square(weights, dtype=np.float64)))))
            offset += n_out * n_in + n_out
        return loss, norms, bool(np.any(grads))

    def _epoch_runner(self, X_dev, Y_dev, n, batch_size, opt, rate, replicas=None,
                      averaging=True, host=None):
        """A function (params, state, step, host order) -> epoch loss for the mode at hand.

        Plain SGD without weight decay and without scikit-learn's penalty alpha takes the
        dedicated SGD loops (the fastest kernels); every other optimiser (and SGD with either
        penalty) the general loop, which also updates its state and step.  Over MPI
        (``replicas``), the gradient-mode loop of ``steepest.distributed`` (every optimiser),
        or in average mode those same single-process loops on this rank's rows (``order``)
        between averagings (without them when not ``averaging``: the warm-up).  ``host``:
        (X, Y) on the host, which gradient mode reads its rows from.
        """
        k = self._backend
        net = (self._size_array, self._activation_codes, self._loss_code)
        if replicas is not None and replicas.sync == "gradient":
            return replicas.epoch_runner(k, net, *host, n, batch_size, opt, rate)
        if replicas is not None:
            # the rows are order's, never all of X: no full-batch shortcut (n = inf)
            local = self._epoch_runner(X_dev, Y_dev, np.inf, batch_size, opt, rate)
            return replicas.averaging_runner(local, self.n_parameters, k) if averaging \
                else local
        if opt.plain_sgd:
            lr = np.float32(rate)
            if batch_size == 1:
                return lambda params, state, step, order: k.kernels.sgd_epoch_per_sample(
                    params, *net, X_dev, Y_dev, k.to_device(order), lr)
            if batch_size is None or batch_size >= n:
                return lambda params, state, step, order: k.kernels.gd_step_full_batch(
                    params, *net, X_dev, Y_dev, lr)
            return lambda params, state, step, order: k.kernels.sgd_epoch_minibatch(
                params, *net, X_dev, Y_dev, k.to_device(order), batch_size, lr)
        hyper = opt.hyper()
        hyper[codes.HYPER_LEARNING_RATE] = rate
        hyper_dev = k.to_device(hyper)
        size = n if batch_size is None else batch_size
        return lambda params, state, step, order: k.kernels.optimizer_epoch_minibatch(
            params, state, step, *net, opt.code, hyper_dev, X_dev, Y_dev, k.to_device(order),
            size)

    # ------------------------------------------------------------------ persistence
    def _state(self):
        return {"sizes": np.array(self.sizes, np.int64), "params": self._params,
                "activation": self.activation, "output": self.output, "loss": self.loss,
                "epochs_trained": np.int64(self.epochs_trained),
                "rng_state": self._rng.bit_generator.state,
                "optimizer": self._optimizer_name, "optimizer_state": self._opt_state,
                "optimizer_step": self._opt_step,
                # JSON text now, so a snapshot of the state does not change with the network
                "training_config": json.dumps(self._train_config),
                "history": json.dumps(self._log), "seed": json.dumps(self.seed),
                "multilabel": json.dumps(self.multilabel)}

    def save(self, path: str | os.PathLike) -> None:
        """Write architecture, parameters and training state to ``path`` (.npz), atomically.

        The training state is saved too (epochs trained, the shuffling generator's state,
        the optimiser with its state, learning rate, batch size and schedule, the per-epoch
        history), so ``load`` followed by ``fit`` continues exactly where this network
        stopped.  The file is written under a temporary name in the same directory and
        renamed.
        """
        with self._lock:
            write_checkpoint(path, self._state())

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> Network:
        """Read a network written by ``save``.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        CheckpointError (a ValueError)
            Not a steepest checkpoint, truncated, pickled objects, another format version, or
            parameters that do not fit the stored architecture.
        """
        path = os.fspath(path)
        fields = read_checkpoint(path)
        sizes = [int(v) for v in field(fields, "sizes", path, dtype=np.int64)]
        try:
            sizes = _check_sizes(sizes)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: bad architecture ({exc})") from None
        expected = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
        params = field(fields, "params", path, dtype=np.float32, shape=(expected,))
        net = cls.__new__(cls)
        net.sizes = sizes
        try:
            net._configure(field(fields, "activation", path, str),
                           field(fields, "output", path, str),
                           field(fields, "loss", path, str), device,
                           json_field(fields, "multilabel", path, default=None))
        except (TypeError, ValueError) as exc:
            if "device" in str(exc):
                raise
            raise CheckpointError(f"{path}: bad configuration ({exc})") from None
        net.init = None
        net._start_training_state(None)
        net.epochs_trained = field(fields, "epochs_trained", path, int)
        net._read_training_state(fields, path)
        net._params = params.copy()
        net._optimizer_name = field(fields, "optimizer", path, str)
        net._opt_state = field(fields, "optimizer_state", path, dtype=np.float32).copy()
        net._opt_step = field(fields, "optimizer_step", path, dtype=np.int64, shape=(1,)).copy()
        if net._opt_state.ndim != 2 or net._opt_state.shape[1] != expected:
            raise CheckpointError(f"{path}: optimizer state of shape {net._opt_state.shape} does "
                                  f"not fit {expected} parameters")
        return net

    def _read_training_state(self, fields, path):
        """The generator, seed, history and training configuration of a checkpoint (the
        last three absent from format-1 files)."""
        try:
            self._rng.bit_generator.state = json_field(fields, "rng_state", path)
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: bad generator state ({exc})") from None
        self.seed = json_field(fields, "seed", path, default=None)
        log = json_field(fields, "history", path, default={})
        config = json_field(fields, "training_config", path, default=None)
        try:
            if not isinstance(log, dict) or not all(isinstance(v, list) for v in log.values()):
                raise ValueError("history is not a dict of per-epoch lists")
            if config is not None:
                optimizer_from_config(config["optimizer"])
                if config["lr_schedule"] is not None:
                    schedule_from_config(config["lr_schedule"])
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: bad training state ({exc})") from None
        self._log, self._train_config = log, config

    def restore(self, path: str | os.PathLike) -> None:
        """Load parameters and training state from ``path`` into this network.

        The checkpoint must hold the same architecture (sizes, activations, loss); anything
        else is refused with a ``CheckpointError`` and this network is left unchanged.
        """
        other = type(self).load(path, device=self.device)
        mine = (self.sizes, self.activation, self.output, self.loss)
        theirs = (other.sizes, other.activation, other.output, other.loss)
        if mine != theirs:
            raise CheckpointError(f"{os.fspath(path)}: holds a network {theirs}, not {mine}")
        with self._lock:
            self._params[...] = other._params
            for key in ("_rng", "epochs_trained", "seed", "_log", "_train_config", "multilabel",
                        "_optimizer_name", "_opt_state", "_opt_step"):
                setattr(self, key, getattr(other, key))


def _check_callbacks(callbacks):
    callbacks = [] if callbacks is None else list(callbacks)
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be a Callback or a callable f(epoch, metrics); "
                            f"got {callback!r}")
    return callbacks


def _accuracy_blocks(n):
    """(start, stop) of the ACCURACY_BLOCKS runs of rows, evenly spaced from the first row to
    the last, on which fit measures training accuracy (all n rows when n ≤ ACCURACY_ROWS)."""
    if n <= ACCURACY_ROWS:
        return [(0, n)]
    rows = ACCURACY_ROWS // ACCURACY_BLOCKS
    last = n - rows
    starts = (round(i * last / (ACCURACY_BLOCKS - 1)) for i in range(ACCURACY_BLOCKS))
    return [(start, start + rows) for start in starts]


def input_scale_warning(X, n_inputs):
    """What to warn when X lies far outside the scale the initialisers assume (~1), or None.

    On at most SCALE_ROWS evenly spaced rows (200,000 MNIST values): a percentile over
    10,000 rows would cost as much as a training epoch of them.  A function of X alone, so
    a sweep asks once for all its networks.
    """
    n = n_rows(X)
    step = -(-n // SCALE_ROWS)
    if isinstance(X, SparseRows):  # the sampled rows' stored values, among all their values
        sample = take_rows(X, np.arange(0, n, step))
        values, count = sample.data, n_rows(sample) * n_inputs
    else:
        sample = values = X[::step]
        count = values.size
    # "the 99th percentile is above the limit", by counting: no sort unless it warns
    if np.count_nonzero(np.abs(values) > INPUT_SCALE_LIMIT) <= 0.01 * count:
        return None
    scale = float(np.percentile(np.abs(to_dense(sample)), 99))
    return (f"X is far outside the usual scale (99% of |x| up to {scale:.4g}): such inputs "
            f"saturate sigmoid/tanh units and kill ReLU units. Scale them to about [0, 1] or "
            f"unit variance first (for pixels: X / 255).")


def _accuracy_groups(X, Y, truth, n_outputs):
    """fit's training-accuracy rows (``_accuracy_blocks``) as (X, Y, truth) views, in groups
    whose outputs one kernel call computes: at most ACCURACY_OUT_SHARE of X's bytes a call."""
    blocks = [(row_slice(X, a, b), Y[a:b], truth[a:b]) for a, b in _accuracy_blocks(n_rows(X))]
    held = (X.indptr, X.indices, X.data) if isinstance(X, SparseRows) else (X,)
    budget = ACCURACY_OUT_SHARE * sum(array.nbytes for array in held)
    return list(_blocks_within(blocks, int(budget) // (4 * n_outputs)))


def _blocks_within(blocks, rows):
    """``blocks`` (each an (X, Y, truth)) in consecutive groups of at most ``rows`` rows
    together, a block alone where it has more."""
    group, count = [], 0
    for block in blocks:
        if group and count + len(block[2]) > rows:
            yield group
            group, count = [], 0
        group.append(block)
        count += len(block[2])
    if group:
        yield group


def _row_chunks(n, rows, verbose, desc):
    """(start, stop) ranges of at most ``rows`` rows covering n, behind a progress bar when
    verbose and there is more than one."""
    progress = progress_bar(n, verbose and n > rows, unit="row", desc=desc)
    try:
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            yield start, stop
            if progress is not None:
                progress.update(stop - start)
    finally:
        if progress is not None:
            progress.close()
