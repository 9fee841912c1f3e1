"""``Network``: a fully connected feed-forward network trained by gradient descent.

Plain Python: it holds the layer sizes, the parameters (one flat float32 vector, viewed as
per-layer W and b) and the hyper-parameters, checks every input, and hands the numerical
work to the kernel set its backend chose.  It never branches on the device.
"""

import os
import time

import numpy as np

from .backend import get_backend
from .checkpoint import CheckpointError, field, json_field, read_checkpoint, write_checkpoint
from ..kernels import codes
from ..progress import progress_bar
from .history import History
from .optimizers import get_optimizer
from .schedules import SCHEDULES, Schedule
from .tables import (HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, default_initializer,
                     initial_params, lookup)
from .validation import check_count, check_features, check_positive_real, check_targets

PROBE_ROWS = 256  # samples in the per-epoch gradient probe
# Training accuracy after each epoch is measured on at most this many training rows, evenly
# spaced through X: a forward pass over 10,000 rows costs milliseconds, over millions it
# would cost more than the epoch.
ACCURACY_ROWS = 10_000
EVAL_CHUNK = 65_536  # rows per forward call when evaluation shows a progress bar


class DivergenceError(FloatingPointError):
    """Training diverged (a NaN/inf loss, or every unit saturated with an exactly zero gradient).

    The weights were restored to the end of the last good epoch.
    """

    def __init__(self, message, epoch, learning_rate, history):
        super().__init__(message)
        self.epoch = epoch
        self.learning_rate = learning_rate
        self.history = history


def _check_sizes(sizes):
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a list of layer widths such as [784, 30, 10]; got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width; got {list(sizes)}")
    return [check_count(n, f"sizes[{i}]", 1) for i, n in enumerate(sizes)]


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
        what fits the loss: "sigmoid" for "mse", "softmax" for "cross_entropy".
    loss : str
        "mse" (½‖a − y‖² per sample, averaged) or "cross_entropy" (needs a softmax output).
    seed : int, optional
        Seeds the initial weights and the shuffling; the same seed gives the same run.
    device : str
        "auto", "cpu" or "cuda" (see ``steepest.models.backend``).
    init : str, optional
        "normal", "scaled_normal", "xavier" or "he"; by default "he" for ReLU networks and
        "scaled_normal" (N(0, 1)/√fan_in) otherwise.
    """

    def __init__(self, sizes, activation="sigmoid", output=None, loss="mse", seed=None,
                 device="auto", init=None):
        self.sizes = _check_sizes(sizes)
        self._configure(activation, output, loss, device)
        self.init = init if init is not None else default_initializer(self.activation)
        self._rng = np.random.default_rng(seed)
        self.epochs_trained = 0
        weights, biases = initial_params(self.sizes, self.init, self._rng)
        self._set_params(weights, biases)

    # ------------------------------------------------------------------ construction
    def _configure(self, activation, output, loss, device):
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
        self._backend = get_backend(device)
        self._loss_code = spec.code
        per_layer = [HIDDEN_ACTIVATIONS[activation]] * (len(self.sizes) - 2) + [OUTPUT_ACTIVATIONS[output]]
        self._activation_codes = np.array(per_layer, dtype=np.int64)
        self._size_array = np.array(self.sizes, dtype=np.int64)

    def _set_params(self, weights, biases):
        self._params = np.concatenate([p for W, b in zip(weights, biases)
                                       for p in (np.ravel(W), np.ravel(b))]).astype(np.float32)
        self._optimizer_name = ""  # no optimiser state yet: see _optimizer_state
        self._opt_state = np.zeros((0, self._params.size), np.float32)
        self._opt_step = np.zeros(1, np.int64)

    @classmethod
    def from_params(cls, weights, biases, activation="sigmoid", output=None, loss="mse",
                    device="auto", seed=None):
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
        net._configure(activation, output, loss, device)
        net.init = None
        net._rng = np.random.default_rng(seed)
        net.epochs_trained = 0
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
    def weights(self):
        """Per-layer weight matrices, float32 of shape (out, in): views of the live parameters."""
        return [W for W, _ in self._views()]

    @property
    def biases(self):
        """Per-layer bias vectors, float32 of shape (out,): views of the live parameters."""
        return [b for _, b in self._views()]

    @property
    def n_parameters(self):
        """Number of weights and biases."""
        return int(self._params.size)

    @property
    def backend_device(self):
        """The device the kernels run on ("cpu" or "cuda"), whatever ``device`` asked for."""
        return self._backend.name

    def __getstate__(self):
        # the backend holds a module of kernels: pickle its device name and look it up again
        return {key: value for key, value in self.__dict__.items() if key != "_backend"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._backend = get_backend(self.device)

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activation!r}, output={self.output!r}, "
                f"loss={self.loss!r}, device={self.backend_device!r})")

    # ------------------------------------------------------------------ inference
    def forward(self, X, verbose=0):
        """Output activations for every row of X: float32 (n, sizes[-1]).

        verbose=1 shows a progress bar over large X (more than EVAL_CHUNK rows) when output
        is a terminal.
        """
        X = check_features(X, self.sizes[0])
        out = np.empty((X.shape[0], self.sizes[-1]), np.float32)
        for start, stop in _row_chunks(X.shape[0], verbose, "forward"):
            out[start:stop] = self._forward(X[start:stop])[0]
        return out

    def _forward(self, X):
        """(host outputs, backend outputs) for checked float32 X."""
        k = self._backend
        out = np.empty((X.shape[0], self.sizes[-1]), np.float32)
        out_dev = k.to_device(out)
        k.kernels.network_forward(out_dev, k.to_device(self._params), self._size_array,
                                  self._activation_codes, k.to_device(X))
        k.to_host(out, out_dev)
        return out, out_dev

    def predict_proba(self, X, verbose=0):
        """Output activations (class probabilities for a softmax output): (n, sizes[-1])."""
        return self.forward(X, verbose)

    def predict(self, X, verbose=0):
        """Class labels (argmax of the outputs; a single output is thresholded at 0.5).

        A network with an identity output is a regressor: its outputs are returned as they
        are, shape (n,) for one output, else (n, sizes[-1]).
        """
        out = self.forward(X, verbose)
        if self.output == "identity":
            return out[:, 0] if out.shape[1] == 1 else out
        return _classes(out)

    def evaluate(self, X, y, verbose=0):
        """Mean loss and, for classification, accuracy: ``{"loss": float, "accuracy": float}``.

        Accuracy is left out for a regressor (identity output with float targets).
        verbose=1 shows a progress bar over large X (more than EVAL_CHUNK rows) when output
        is a terminal.
        """
        X = check_features(X, self.sizes[0])
        Y, labels = check_targets(y, X.shape[0], self.sizes[-1])
        return self._evaluate(X, Y, labels, verbose)

    def _classifies(self, Y, labels):
        """Whether accuracy means something: class labels given, or one-hot-like targets
        on a non-identity output with several units."""
        return labels is not None or (self.output != "identity" and Y.shape[1] > 1)

    def _evaluate(self, X, Y, labels, verbose=0):
        k = self._backend
        classify = self._classifies(Y, labels)
        truth = None if not classify else labels if labels is not None else Y.argmax(axis=1)
        loss_sum, correct = 0.0, 0
        for start, stop in _row_chunks(X.shape[0], verbose, "evaluate"):
            out, out_dev = self._forward(X[start:stop])
            # loss_value is a mean over its rows; weighting by rows gives the mean over X
            loss = k.kernels.loss_value(out_dev, k.to_device(Y[start:stop]), self._loss_code)
            loss_sum += float(loss) * (stop - start)
            if classify:
                correct += int(np.count_nonzero(_classes(out) == truth[start:stop]))
        result = {"loss": loss_sum / X.shape[0]}
        if classify:
            result["accuracy"] = correct / X.shape[0]
        return result

    # ------------------------------------------------------------------ training
    def fit(self, X, y, epochs=1, batch_size=32, learning_rate=None, shuffle=True,
            validation_data=None, validation_split=None, verbose=0, callbacks=None,
            lr_schedule=None, checkpoint=None, checkpoint_every=1, optimizer=None):
        """Train by gradient descent; returns a ``History`` of per-epoch metrics.

        Each epoch is one compiled kernel call; validation, schedules, callbacks and
        checkpoints run in Python between epochs.

        Parameters
        ----------
        X : array (n, sizes[0])
            Inputs; converted to float32 (integers by value, without rescaling).
        y : array
            Integer class labels (n,) (one-hot internally) or float targets (n, sizes[-1]).
        epochs : int
            Passes over the data (0 trains nothing).
        batch_size : int or None
            1: per-sample SGD; k: mini-batch SGD, the last batch of an epoch may be shorter;
            None (or ≥ n): full-batch gradient descent, one step per epoch.
        learning_rate : float, optional
            η > 0; for plain SGD θ ← θ − η∇L, where L is the batch-mean loss.  None takes
            the optimiser's default (0.1 for SGD, 1e-3 for Adam, …).
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
        lr_schedule : Schedule or callable, optional
            Gives each epoch's rate: ``StepDecay``, ``ExponentialDecay``, ``InverseScaling``,
            ``ReduceOnPlateau``, or ``f(epoch, learning_rate, history_dict) -> float``.
        checkpoint : str or os.PathLike, optional
            Save the network (parameters and training state, see ``save``) to this path
            every ``checkpoint_every`` epochs and after the last one.  ``Network.load`` of
            that file followed by ``fit`` with the remaining epochs ends with the same
            weights as an uninterrupted run (bit-identical on the CPU).
        checkpoint_every : int
            Epochs between checkpoints.
        optimizer : str or steepest.optimizers.Optimizer, optional
            "sgd" (the default), "momentum", "adagrad", "rmsprop", "adam", or a configured
            object such as ``steepest.optimizers.Adam(beta1=0.8, weight_decay=1e-4)``.  The
            optimiser's state (velocity, moments, step count) stays with the network, so
            successive ``fit`` calls and checkpoints continue it; a different optimiser
            starts from fresh state.

        Raises
        ------
        DivergenceError
            The loss became NaN or inf, or every unit saturated; the parameters are those of
            the last good epoch.
        """
        X = check_features(X, self.sizes[0])
        Y, labels = check_targets(y, X.shape[0], self.sizes[-1])
        epochs = check_count(epochs, "epochs", 0)
        if learning_rate is not None:
            learning_rate = check_positive_real(learning_rate, "learning_rate")
        opt = get_optimizer(optimizer, learning_rate)
        learning_rate = opt.learning_rate
        validation = self._validation_set(validation_data, validation_split, X, Y, labels)
        if validation_split is not None:
            n_train = len(X) - len(validation[0])
            X, Y = X[:n_train], Y[:n_train]
            labels = None if labels is None else labels[:n_train]
        n = X.shape[0]
        if batch_size is not None:
            batch_size = min(check_count(batch_size, "batch_size", 1), n)
        if checkpoint is not None:
            checkpoint = os.fspath(checkpoint)
            checkpoint_every = check_count(checkpoint_every, "checkpoint_every", 1)
        callbacks = _check_callbacks(callbacks)
        schedule = _check_schedule(lr_schedule)

        history = History(self.backend_device)
        k = self._backend
        X_dev, Y_dev = k.to_device(X), k.to_device(Y)
        params_dev = k.to_device(self._params)
        state, step = self._optimizer_state(opt)
        state_dev, step_dev = k.to_device(state), k.to_device(step)
        if epochs:
            history.warmup_seconds = self._warm_up(X, Y, batch_size, opt)
        # A fixed probe batch: after each epoch, its per-layer gradient norms go into the
        # history (vanishing/exploding gradients show there) and reveal a saturated network.
        probe = min(n, PROBE_ROWS)
        probe_dev = (k.to_device(X[:probe]), k.to_device(Y[:probe]))
        # contiguous copies: a strided view would make the kernels compile for another layout
        stride = -(-n // ACCURACY_ROWS)  # ceil: at most ACCURACY_ROWS rows
        accuracy_rows = None if not self._classifies(Y, labels) else (
            np.ascontiguousarray(X[::stride]), np.ascontiguousarray(Y[::stride]),
            None if labels is None else labels[::stride])
        for callback in callbacks:
            getattr(callback, "on_train_begin", lambda net: None)(self)
        progress = progress_bar(epochs, verbose, unit="epoch")
        for epoch in range(1, epochs + 1):
            rate = learning_rate if schedule is None else \
                check_positive_real(schedule(epoch, learning_rate, history.history),
                                    "the learning rate from lr_schedule")
            run_epoch = self._epoch_runner(X_dev, Y_dev, n, batch_size, opt, rate)
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            last_good = (self._params.copy(), state.copy(), step.copy())
            start = time.perf_counter()
            loss = float(run_epoch(params_dev, state_dev, step_dev, order))
            k.to_host(self._params, params_dev)
            k.to_host(state, state_dev)
            k.to_host(step, step_dev)
            seconds = time.perf_counter() - start
            probe_loss, norms, moving = self._probe_gradient(params_dev, *probe_dev)
            problem = None
            if not (np.isfinite(loss) and np.isfinite(self._params).all()):
                problem = f"the loss became {loss}"
            elif probe_loss > 0 and not moving:
                # Every unit saturated (σ′ = a(1 − a) is exactly 0 in float32) or dead: the
                # gradient is exactly zero while the loss is not, so no step can ever help.
                problem = (f"every unit saturated: the gradient is exactly zero while the "
                           f"loss is {probe_loss:.4g}")
            if problem is not None:
                for array, good in zip((self._params, state, step), last_good):
                    array[...] = good
                raise DivergenceError(
                    f"training diverged in epoch {epoch}: {problem} at "
                    f"learning_rate={rate}; the weights were restored to the end of "
                    f"epoch {epoch - 1}. Try a smaller learning rate.", epoch, rate, history)
            self.epochs_trained += 1
            metrics = {"epoch": epoch, "loss": loss, "seconds": seconds,
                       "samples_per_s": n / seconds if seconds > 0 else float("inf"),
                       "learning_rate": rate, "grad_norms": norms}
            if accuracy_rows is not None:
                metrics["accuracy"] = self._evaluate(*accuracy_rows)["accuracy"]
            if validation is not None:
                val = self._evaluate(*validation)
                metrics.update({f"val_{key}": value for key, value in val.items()})
            history.append(**metrics)
            if checkpoint is not None and (epoch % checkpoint_every == 0 or epoch == epochs):
                self.save(checkpoint)
            if progress is not None:
                progress.set_postfix({key: f"{v:.4g}" for key, v in metrics.items()
                                      if key in ("loss", "val_accuracy", "samples_per_s")})
                progress.update(1)
            # every callback sees every epoch, even after one of them asked to stop
            if any([bool(callback(epoch, dict(metrics))) for callback in callbacks]):
                break
        if progress is not None:
            progress.close()
        for callback in callbacks:
            getattr(callback, "on_train_end", lambda net: None)(self)
        return history

    def _validation_set(self, validation_data, validation_split, X, Y, labels):
        """(X_val, Y_val, labels_val) from validation_data or validation_split, or None."""
        if validation_data is not None and validation_split is not None:
            raise ValueError("give validation_data or validation_split, not both")
        if validation_split is not None:
            if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
                    or not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be a fraction in (0, 1); got {validation_split!r}")
            n_val = int(round(len(X) * validation_split))
            if not 0 < n_val < len(X):
                raise ValueError(f"validation_split={validation_split} of {len(X)} samples leaves "
                                 f"{n_val} for validation and {len(X) - n_val} for training")
            return X[-n_val:], Y[-n_val:], None if labels is None else labels[-n_val:]
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_val = check_features(validation_data[0], self.sizes[0], "validation_data[0]")
        Y_val, labels_val = check_targets(validation_data[1], X_val.shape[0], self.sizes[-1],
                                          "validation_data[1]")
        return X_val, Y_val, labels_val

    def _warm_up(self, X, Y, batch_size, opt):
        """Compile (or load from cache) the epoch kernel on a few samples and scratch copies
        of the parameters and optimiser state, so epoch 1's samples/s measures training, not
        the compiler."""
        k = self._backend
        tic = time.perf_counter()
        few = min(len(X), 2 * batch_size) if batch_size else min(len(X), 64)
        run = self._epoch_runner(k.to_device(X[:few]), k.to_device(Y[:few]), few, batch_size,
                                 opt, opt.learning_rate)
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

    def gradient_norms(self, X, y):
        """‖∂L/∂Wˡ‖ (Frobenius) for each layer l on the batch (X, y), input layer first.

        The first layers' norms far below the last's is the vanishing-gradient picture.
        """
        X = check_features(X, self.sizes[0])
        Y, _ = check_targets(y, X.shape[0], self.sizes[-1])
        k = self._backend
        return self._probe_gradient(k.to_device(self._params), k.to_device(X), k.to_device(Y))[1]

    def _probe_gradient(self, params_dev, X_dev, Y_dev):
        """(batch loss, per-layer weight-gradient norms, whether any gradient entry — weight
        or bias — is non-zero) at the backend's current parameters."""
        k = self._backend
        grads = np.empty_like(self._params)
        grads_dev = k.to_device(grads)
        loss = float(k.kernels.network_gradient(grads_dev, params_dev, self._size_array,
                                                self._activation_codes, self._loss_code,
                                                X_dev, Y_dev))
        k.to_host(grads, grads_dev)
        norms, offset = [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            # float64 sum of squares: thousands of float32 terms of very different sizes
            norms.append(float(np.linalg.norm(grads[offset:offset + n_out * n_in].astype(np.float64))))
            offset += n_out * n_in + n_out
        return loss, norms, bool(np.any(grads))

    def _epoch_runner(self, X_dev, Y_dev, n, batch_size, opt, rate):
        """A function (params, state, step, host order) -> epoch loss for the mode at hand.

        Plain SGD without weight decay takes the dedicated SGD loops (the fastest kernels);
        every other optimiser the general loop, which also updates its state and step.
        """
        k = self._backend
        net = (self._size_array, self._activation_codes, self._loss_code)
        if opt.code == codes.SGD and opt.weight_decay == 0:
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
                "optimizer_step": self._opt_step}

    def save(self, path):
        """Write architecture, parameters and training state to ``path`` (.npz), atomically.

        The training state (epochs trained, the shuffling generator's state) is saved too,
        so ``load`` followed by ``fit`` continues exactly where this network stopped.  The
        file is written under a temporary name in the same directory and renamed.
        """
        write_checkpoint(path, self._state())

    @classmethod
    def load(cls, path, device="auto"):
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
            net._configure(field(fields, "activation", path, str), field(fields, "output", path, str),
                           field(fields, "loss", path, str), device)
        except ValueError as exc:
            if "device" in str(exc):
                raise
            raise CheckpointError(f"{path}: bad configuration ({exc})") from None
        net.init = None
        net.epochs_trained = field(fields, "epochs_trained", path, int)
        net._rng = np.random.default_rng()
        try:
            net._rng.bit_generator.state = json_field(fields, "rng_state", path)
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: bad generator state ({exc})") from None
        net._params = params.copy()
        net._optimizer_name = field(fields, "optimizer", path, str)
        net._opt_state = field(fields, "optimizer_state", path, dtype=np.float32).copy()
        net._opt_step = field(fields, "optimizer_step", path, dtype=np.int64, shape=(1,)).copy()
        if net._opt_state.ndim != 2 or net._opt_state.shape[1] != expected:
            raise CheckpointError(f"{path}: optimizer state of shape {net._opt_state.shape} does "
                                  f"not fit {expected} parameters")
        return net

    def restore(self, path):
        """Load parameters and training state from ``path`` into this network.

        The checkpoint must hold the same architecture (sizes, activations, loss); anything
        else is refused with a ``CheckpointError`` and this network is left unchanged.
        """
        other = type(self).load(path, device=self.device)
        mine = (self.sizes, self.activation, self.output, self.loss)
        theirs = (other.sizes, other.activation, other.output, other.loss)
        if mine != theirs:
            raise CheckpointError(f"{os.fspath(path)}: holds a network {theirs}, not {mine}")
        self._params[...] = other._params
        self._rng = other._rng
        self.epochs_trained = other.epochs_trained
        self._optimizer_name = other._optimizer_name
        self._opt_state, self._opt_step = other._opt_state, other._opt_step


def _check_callbacks(callbacks):
    callbacks = [] if callbacks is None else list(callbacks)
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be a Callback or a callable f(epoch, metrics); "
                            f"got {callback!r}")
    return callbacks


def _check_schedule(schedule):
    if schedule is None:
        return None
    if isinstance(schedule, str):
        schedule = lookup(SCHEDULES, schedule, "lr_schedule")()
    if isinstance(schedule, Schedule):
        return schedule.learning_rate
    if callable(schedule):
        return schedule
    raise TypeError(f"lr_schedule must be a Schedule, a name ({', '.join(SCHEDULES)}) or a "
                    f"callable f(epoch, learning_rate, history); got {schedule!r}")


def _classes(out):
    if out.shape[1] == 1:
        return (out[:, 0] > 0.5).astype(np.int64)
    return out.argmax(axis=1)


def _row_chunks(n, verbose, desc):
    """(start, stop) row ranges: all n rows at once, or EVAL_CHUNK-row pieces behind a
    progress bar when verbose and n is large enough for one to matter."""
    progress = progress_bar(n, verbose and n > EVAL_CHUNK, unit="row", desc=desc)
    if progress is None:
        yield 0, n
        return
    try:
        for start in range(0, n, EVAL_CHUNK):
            stop = min(n, start + EVAL_CHUNK)
            yield start, stop
            progress.update(stop - start)
    finally:
        progress.close()
