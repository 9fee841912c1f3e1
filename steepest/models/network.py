"""``Network``: a fully connected feed-forward network trained by gradient descent.

Plain Python: it holds the layer sizes, the parameters (one flat float32 vector, viewed as
per-layer W and b) and the hyper-parameters, checks every input, and hands the numerical
work to the kernel set its backend chose.  It never branches on the device.
"""

import os
import tempfile
import time

import numpy as np

from .backend import get_backend
from .history import History
from .tables import (HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, default_initializer,
                     initial_params, lookup)
from .validation import check_count, check_features, check_positive_real, check_targets

FORMAT_VERSION = 1


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss; the weights were restored to the last good epoch."""

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
        codes = [HIDDEN_ACTIVATIONS[activation]] * (len(self.sizes) - 2) + [OUTPUT_ACTIVATIONS[output]]
        self._activation_codes = np.array(codes, dtype=np.int64)
        self._size_array = np.array(self.sizes, dtype=np.int64)

    def _set_params(self, weights, biases):
        self._params = np.concatenate([p for W, b in zip(weights, biases)
                                       for p in (np.ravel(W), np.ravel(b))]).astype(np.float32)

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

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activation!r}, output={self.output!r}, "
                f"loss={self.loss!r}, device={self.backend_device!r})")

    # ------------------------------------------------------------------ inference
    def forward(self, X):
        """Output activations for every row of X: float32 (n, sizes[-1])."""
        return self._forward(check_features(X, self.sizes[0]))[0]

    def _forward(self, X):
        """(host outputs, backend outputs) for checked float32 X."""
        k = self._backend
        out = np.empty((X.shape[0], self.sizes[-1]), np.float32)
        out_dev = k.to_device(out)
        k.kernels.network_forward(out_dev, k.to_device(self._params), self._size_array,
                                  self._activation_codes, k.to_device(X))
        k.to_host(out, out_dev)
        return out, out_dev

    def predict_proba(self, X):
        """Output activations (class probabilities for a softmax output): (n, sizes[-1])."""
        return self.forward(X)

    def predict(self, X):
        """Class labels (argmax of the outputs; a single output is thresholded at 0.5).

        A network with an identity output is a regressor: its outputs are returned as they
        are, shape (n,) for one output, else (n, sizes[-1]).
        """
        out = self.forward(X)
        if self.output == "identity":
            return out[:, 0] if out.shape[1] == 1 else out
        return _classes(out)

    def evaluate(self, X, y):
        """Mean loss and, for classification, accuracy: ``{"loss": float, "accuracy": float}``.

        Accuracy is left out for a regressor (identity output with float targets).
        """
        X = check_features(X, self.sizes[0])
        Y, labels = check_targets(y, X.shape[0], self.sizes[-1])
        return self._evaluate(X, Y, labels)

    def _evaluate(self, X, Y, labels):
        out, out_dev = self._forward(X)
        k = self._backend
        result = {"loss": float(k.kernels.loss_value(out_dev, k.to_device(Y), self._loss_code))}
        if labels is not None or (self.output != "identity" and Y.shape[1] > 1):
            truth = labels if labels is not None else Y.argmax(axis=1)
            result["accuracy"] = float(np.mean(_classes(out) == truth))
        return result

    # ------------------------------------------------------------------ training
    def fit(self, X, y, epochs=1, batch_size=32, learning_rate=0.1, shuffle=True,
            validation_data=None, verbose=0):
        """Train by gradient descent; returns a ``History`` of per-epoch metrics.

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
        learning_rate : float
            η > 0 in θ ← θ − η∇L, where L is the batch-mean loss.
        shuffle : bool
            Reshuffle the samples each epoch (seeded by the network's ``seed``); False
            trains in the given order.
        validation_data : (X_val, y_val), optional
            Evaluated after each epoch: ``val_loss`` and ``val_accuracy`` in the history.
        verbose : int
            0: silent; 1: a progress bar over epochs (only when output is a terminal).

        Raises
        ------
        DivergenceError
            The loss became NaN or inf; the parameters are those of the last good epoch.
        """
        X = check_features(X, self.sizes[0])
        Y, _ = check_targets(y, X.shape[0], self.sizes[-1])
        epochs = check_count(epochs, "epochs", 0)
        learning_rate = check_positive_real(learning_rate, "learning_rate")
        n = X.shape[0]
        if batch_size is not None:
            batch_size = min(check_count(batch_size, "batch_size", 1), n)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            X_val = check_features(validation_data[0], self.sizes[0], "validation_data[0]")
            Y_val, labels_val = check_targets(validation_data[1], X_val.shape[0], self.sizes[-1],
                                              "validation_data[1]")

        history = History(self.backend_device)
        k = self._backend
        X_dev, Y_dev = k.to_device(X), k.to_device(Y)
        params_dev = k.to_device(self._params)
        lr = np.float32(learning_rate)
        progress = _progress(epochs, verbose)
        for epoch in range(1, epochs + 1):
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            last_good = self._params.copy()
            start = time.perf_counter()
            if batch_size == 1:
                loss = k.kernels.sgd_epoch_per_sample(
                    params_dev, self._size_array, self._activation_codes, self._loss_code,
                    X_dev, Y_dev, k.to_device(order), lr)
            elif batch_size is None or batch_size >= n:
                loss = k.kernels.gd_step_full_batch(
                    params_dev, self._size_array, self._activation_codes, self._loss_code,
                    X_dev, Y_dev, lr)
            else:
                loss = k.kernels.sgd_epoch_minibatch(
                    params_dev, self._size_array, self._activation_codes, self._loss_code,
                    X_dev, Y_dev, k.to_device(order), batch_size, lr)
            k.to_host(self._params, params_dev)
            seconds = time.perf_counter() - start
            loss = float(loss)
            if not (np.isfinite(loss) and np.isfinite(self._params).all()):
                self._params[...] = last_good
                raise DivergenceError(
                    f"training diverged in epoch {epoch}: the loss became {loss} at "
                    f"learning_rate={learning_rate}; the weights were restored to the end of "
                    f"epoch {epoch - 1}. Try a smaller learning rate.", epoch, learning_rate,
                    history)
            metrics = {"epoch": epoch, "loss": loss, "seconds": seconds,
                       "samples_per_s": n / seconds if seconds > 0 else float("inf"),
                       "learning_rate": learning_rate}
            if validation_data is not None:
                val = self._evaluate(X_val, Y_val, labels_val)
                metrics["val_loss"] = val["loss"]
                if "accuracy" in val:
                    metrics["val_accuracy"] = val["accuracy"]
            history.append(**metrics)
            if progress is not None:
                progress.set_postfix({k2: f"{v:.4g}" for k2, v in metrics.items()
                                      if k2 in ("loss", "val_accuracy", "samples_per_s")})
                progress.update(1)
        if progress is not None:
            progress.close()
        return history

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the architecture and parameters to ``path`` (an .npz file), atomically.

        The file is written under a temporary name in the same directory and renamed, so a
        crash mid-write never leaves a broken file at ``path``.
        """
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".steepest-", suffix=".npz", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, format_version=np.int64(FORMAT_VERSION),
                         sizes=np.array(self.sizes, np.int64), params=self._params,
                         activation=np.str_(self.activation), output=np.str_(self.output),
                         loss=np.str_(self.loss))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path, device="auto"):
        """Read a network written by ``save``; pickled objects are refused."""
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                fields = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable steepest checkpoint ({exc})") from None
        needed = {"format_version", "sizes", "params", "activation", "output", "loss"}
        if not needed <= set(fields):
            raise ValueError(f"{path}: not a steepest checkpoint (missing {sorted(needed - set(fields))})")
        version = int(fields["format_version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: checkpoint format version {version}, this steepest reads "
                             f"version {FORMAT_VERSION}")
        sizes = [int(n) for n in fields["sizes"]]
        params = fields["params"]
        expected = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
        if params.dtype != np.float32 or params.shape != (expected,):
            raise ValueError(f"{path}: parameters of shape {params.shape} and dtype {params.dtype} "
                             f"do not fit sizes {sizes} ({expected} float32 values)")
        net = cls.__new__(cls)
        net.sizes = _check_sizes(sizes)
        net._configure(str(fields["activation"]), str(fields["output"]), str(fields["loss"]), device)
        net.init = None
        net._rng = np.random.default_rng()
        net._params = params.copy()
        return net


def _classes(out):
    if out.shape[1] == 1:
        return (out[:, 0] > 0.5).astype(np.int64)
    return out.argmax(axis=1)


def _progress(epochs, verbose):
    if not verbose or epochs == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    # disable=None: tqdm stays silent when stderr is not a terminal
    return tqdm(total=epochs, unit="epoch", disable=None)
