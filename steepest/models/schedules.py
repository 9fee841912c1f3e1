"""Learning-rate schedules: η for the next epoch from the base rate and the history so far.

Each schedule is a pure function of (epoch, base learning rate, history), so a resumed or
repeated run gets the same rates, and nothing here runs inside the compiled loops: ``fit``
asks once per epoch and passes the rate to the epoch's one kernel call.
"""

import math

from .validation import check_count, check_positive_real


class Schedule:
    """Base class: ``learning_rate(epoch, base, history) -> float`` (epoch counts from 1)."""

    def learning_rate(self, epoch, base, history):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepDecay(Schedule):
    """η = base · factor^⌊(epoch − 1) / step_size⌋: drop by ``factor`` every ``step_size`` epochs."""

    def __init__(self, step_size=10, factor=0.5):
        self.step_size = check_count(step_size, "step_size", 1)
        self.factor = check_positive_real(factor, "factor")

    def learning_rate(self, epoch, base, history):
        return base * self.factor ** ((epoch - 1) // self.step_size)


class ExponentialDecay(Schedule):
    """η = base · factor^(epoch − 1)."""

    def __init__(self, factor=0.95):
        self.factor = check_positive_real(factor, "factor")

    def learning_rate(self, epoch, base, history):
        return base * self.factor ** (epoch - 1)


class InverseScaling(Schedule):
    """η = base / epoch^power (scikit-learn's "invscaling", counted in epochs)."""

    def __init__(self, power=0.5):
        self.power = check_positive_real(power, "power")

    def learning_rate(self, epoch, base, history):
        return base / math.pow(epoch, self.power)


class ReduceOnPlateau(Schedule):
    """Multiply η by ``factor`` after ``patience`` epochs without an improvement of ``monitor``
    by more than ``min_delta``; never below ``min_learning_rate``.

    The rate is replayed from the history, so the schedule itself holds no state.
    """

    def __init__(self, monitor="val_loss", factor=0.5, patience=3, min_delta=0.0,
                 min_learning_rate=0.0):
        self.monitor = monitor
        self.factor = check_positive_real(factor, "factor")
        if self.factor >= 1:
            raise ValueError(f"factor must be < 1 to reduce the rate; got {factor}")
        self.patience = check_count(patience, "patience", 1)
        self.min_delta = float(min_delta)
        self.min_learning_rate = float(min_learning_rate)

    def learning_rate(self, epoch, base, history):
        values = history.get(self.monitor, [])
        if history.get("epoch") and not values:
            raise ValueError(f"ReduceOnPlateau monitors {self.monitor!r}, which the history does "
                             f"not record; recorded: {sorted(history)}")
        rate, best, wait = base, math.inf, 0
        for value in values:
            if value < best - self.min_delta:
                best, wait = value, 0
            else:
                wait += 1
                if wait >= self.patience:
                    rate, wait = max(rate * self.factor, self.min_learning_rate), 0
        return rate


SCHEDULES = {"step": StepDecay, "exponential": ExponentialDecay, "invscaling": InverseScaling,
             "plateau": ReduceOnPlateau}
