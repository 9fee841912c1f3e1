"""Callbacks: Python that runs between epochs, never inside the compiled loops.

A callback is a ``Callback`` subclass or any callable ``f(epoch, metrics)``; returning True
(or ``STOP``) ends training after that epoch.  ``metrics`` is the dict the history records
for the epoch (loss, val_loss, val_accuracy, learning_rate, grad_norms, …).
"""

import math

STOP = True


class Callback:
    """Hooks called by ``Network.fit``; override the ones you need."""

    def on_train_begin(self, network):
        pass

    def on_epoch_end(self, epoch, metrics):
        """Return True to stop training after this epoch."""
        return False

    def on_train_end(self, network):
        pass

    def __call__(self, epoch, metrics):
        return self.on_epoch_end(epoch, metrics)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best_weights`` the network ends as it was after the best epoch:
    its weights, optimiser state, shuffling state and epoch count (and a ``checkpoint=``
    file written by that ``fit`` holds that state).

    ``best_epoch`` and ``stopped_epoch`` (0 when training ran to the end) record what
    happened, numbered by the network's epoch count.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
                 restore_best_weights=True):
        if mode == "auto":
            mode = "max" if "accuracy" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
        if patience < 1:
            raise ValueError(f"patience must be ≥ 1; got {patience}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(float(min_delta))
        self.mode, self.restore_best_weights = mode, restore_best_weights

    def on_train_begin(self, network):
        self._network = network
        self.best = -math.inf if self.mode == "max" else math.inf
        self.best_epoch, self.stopped_epoch, self._wait, self._best_state = 0, 0, 0, None

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, metrics):
        if self.monitor not in metrics:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which fit does not record; "
                             f"recorded: {sorted(metrics)} (pass validation_data or "
                             f"validation_split for 'val_*')")
        value = metrics[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_state = self._network._training_snapshot()
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            return STOP
        return False

    def on_train_end(self, network):
        if self.restore_best_weights and self._best_state is not None:
            network._restore_training_snapshot(self._best_state)
