"""Learning-rate schedules: η for the next epoch from the base rate and the history so far.

Each schedule is a pure function of (epoch, base learning rate, history), so a resumed or
repeated run gets the same rates, and nothing here runs inside the compiled loops: ``fit``
asks once per epoch and passes the rate to the epoch's one kernel call.  ``epoch`` counts
every epoch the network has trained (``Network.epochs_trained`` + 1 for the next one) and
``history`` holds all of them, so a schedule continues across ``fit`` calls and checkpoints.
"""

import inspect
import math

from .tables import lookup
from .validation import check_count, check_positive_real


class Schedule:
    """Base class: ``learning_rate(epoch, base, history) -> float`` (epoch counts from 1)."""

    def learning_rate(self, epoch, base, history):
        raise NotImplementedError

    def __call__(self, epoch, base, history):
        return self.learning_rate(epoch, base, history)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def to_config(self):
        """A JSON-ready dict (table name and arguments) that ``schedule_from_config`` reads;
        None for a schedule class of the user's own, which cannot be rebuilt from a file."""
        names = [key for key, cls in SCHEDULES.items() if cls is type(self)]
        return {"name": names[0], **vars(self)} if names else None


class Constant(Schedule):
    """η = base every epoch: ``lr_schedule="constant"`` ends a schedule the network carries."""

    def learning_rate(self, epoch, base, history):
        return base


class StepDecay(Schedule):
    """η = base · factor^⌊(epoch − 1) / step_size⌋: ×``factor`` every ``step_size`` epochs."""

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


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": ExponentialDecay,
             "invscaling": InverseScaling, "plateau": ReduceOnPlateau}


def schedule_from_config(config):
    """The schedule ``Schedule.to_config`` described (a checkpoint's training state)."""
    fields = dict(config)
    return lookup(SCHEDULES, fields.pop("name", None), "lr_schedule")(**fields)


def schedule_function(schedule):
    """``f(epoch, learning_rate, history)`` from a user's callable taking all three, or
    ``(epoch, learning_rate)`` as Keras's ``LearningRateScheduler`` does, or ``(epoch)``.

    ``epoch`` counts from 1 here (Keras counts from 0).  A callable that takes none of these
    is refused now, before any training, with a TypeError naming it.
    """
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):  # some builtins have no signature: assume the full form
        return schedule
    for n_args in (3, 2, 1):
        try:
            signature.bind(*range(n_args))
        except TypeError:
            continue
        if n_args == 3:
            return schedule
        return lambda epoch, rate, history: schedule(*(epoch, rate, history)[:n_args])
    raise TypeError(f"lr_schedule {schedule!r} must take (epoch, learning_rate, history), "
                    f"(epoch, learning_rate) or (epoch); its signature is {signature}")
