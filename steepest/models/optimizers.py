"""Optimisers by name or object: SGD, Momentum, Adagrad, RMSProp and Adam.

An optimiser here is only a description: its integer code, its hyper-parameters packed as
the float32 vector the kernels read, and how many rows of state it needs.  The arithmetic
lives in the kernels (``optimizer_step`` and ``optimizer_epoch_minibatch`` in
``steepest.kernels.reference`` and its compiled twins).  Not here: learning-rate schedules.

    steepest.optimizers.Adam(learning_rate=1e-3, beta1=0.9)
    steepest.optimizers.get_optimizer("rmsprop", learning_rate=0.01)
    steepest.optimizers.Momentum(0.1, momentum=0.9, nesterov=True, alpha=1e-4)  # scikit-learn's

Two L2 penalties, independent of each other
-------------------------------------------
* ``weight_decay`` λ: λθ is added to the gradient of EVERY parameter, biases included, at
  every step, whatever the batch size (the "coupled" decay).
* ``alpha`` α: scikit-learn's MLP ``alpha``.  Each batch of B rows (the short last batch its
  own B) minimises its mean loss + ½α‖W‖²/B over the WEIGHTS only (not the biases): (α/B)·W
  joins the weights' gradient, and the epoch's reported loss is
  (Σ per-sample losses + Σ over batches of ½α‖W‖²) / N, as scikit-learn's ``loss_curve_``.
  The epoch loops apply it (``optimizer_epoch_minibatch``); the single ``optimizer_step``
  kernel, which knows neither the batch nor the layout, ignores it.

What ``Network.fit`` does with one
----------------------------------
``fit`` resolves the call's optimiser (the one passed, else the network's last one) and
keeps its configuration (``to_config``) with the network and in checkpoints.  The state
rows (``new_state``: velocity, Adagrad's G, RMSProp's E, Adam's m and v) and the step count
(Adam's t) live on the network too, so successive ``fit`` calls and a resumed checkpoint
continue them; a different kind of optimiser starts from fresh state.  Each epoch is one
call of ``optimizer_epoch_minibatch`` with ``hyper()`` holding that epoch's learning rate,
except plain SGD without weight decay and without alpha, which takes the dedicated (faster)
SGD loops; the two perform exactly the same updates.  Configurations saved before ``alpha``
and ``nesterov`` existed load with alpha 0 and no Nesterov.
"""

import math
import numbers

import numpy as np

from ..kernels import codes
from .tables import lookup

__all__ = ["Optimizer", "SGD", "Momentum", "Adagrad", "RMSProp", "Adam", "OPTIMIZERS",
           "get_optimizer", "optimizer_from_config"]


def _real(value, name, low, high=math.inf, low_open=False, high_open=True):
    """A finite float in [low, high) (or (low, ...) with low_open), else an error naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}; got {value!r}")
    return value


class Optimizer:
    """Base class: a name, a kernel code, hyper-parameters and the state rows it needs."""

    name = None
    code = None
    n_state_slots = 0

    def __init__(self, learning_rate, weight_decay=0.0, alpha=0.0):
        self.learning_rate = _real(learning_rate, "learning_rate", 0.0, low_open=True)
        self.weight_decay = _real(weight_decay, "weight_decay", 0.0)
        self.alpha = _real(alpha, "alpha", 0.0)

    def _extra(self):
        """(β₁/μ/ρ, β₂, ε) in the kernels' layout; unused slots are 0."""
        return 0.0, 0.0, 0.0

    def hyper(self):
        """The float32 hyper-parameter vector (η, λ, β₁/μ/ρ, β₂, ε, α, Nesterov) the kernels
        read (layout: ``codes.HYPER_*``)."""
        vector = np.zeros(codes.N_HYPER, np.float32)
        vector[codes.HYPER_LEARNING_RATE] = self.learning_rate
        vector[codes.HYPER_WEIGHT_DECAY] = self.weight_decay
        vector[[codes.HYPER_BETA1, codes.HYPER_BETA2, codes.HYPER_EPS]] = self._extra()
        vector[codes.HYPER_L2] = self.alpha
        return vector

    @property
    def plain_sgd(self):
        """Plain SGD, without weight decay and without alpha: the dedicated SGD loops train
        it (faster, the same updates), which count no steps."""
        return self.code == codes.SGD and self.weight_decay == 0 and self.alpha == 0

    def new_state(self, n_params):
        """Zeroed optimiser state: float32 of shape (n_state_slots, n_params)."""
        return np.zeros((self.n_state_slots, int(n_params)), np.float32)

    def _fields(self):
        return {"learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                "alpha": self.alpha}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self._fields() == other._fields()

    def to_config(self):
        """A JSON-ready dict (name and hyper-parameters) that ``optimizer_from_config`` reads."""
        return {"name": self.name, **self._fields()}

    def with_learning_rate(self, learning_rate):
        """A copy with another base learning rate, every other hyper-parameter kept."""
        return type(self)(**{**self._fields(), "learning_rate": learning_rate})


class SGD(Optimizer):
    """Plain gradient descent: θ ← θ − η(∇ + λθ) (∇ with the (α/B)·W of ``alpha`` on the
    weights, see the module docstring)."""

    name, code, n_state_slots = "sgd", codes.SGD, 0

    def __init__(self, learning_rate=0.1, weight_decay=0.0, alpha=0.0):
        super().__init__(learning_rate, weight_decay, alpha)


class Momentum(Optimizer):
    """Classical momentum: v ← μv − η g;  θ ← θ + v, with g = ∇ + λθ (one state row: v).

    ``nesterov=True``: scikit-learn's Nesterov momentum (its ``SGDOptimizer``,
    ``nesterovs_momentum``): v ← μv − η g;  θ ← θ + μv − η g, v the new velocity.
    """

    name, code, n_state_slots = "momentum", codes.MOMENTUM, 1

    def __init__(self, learning_rate=0.1, momentum=0.9, weight_decay=0.0, alpha=0.0,
                 nesterov=False):
        super().__init__(learning_rate, weight_decay, alpha)
        self.momentum = _real(momentum, "momentum", 0.0, 1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False; got {nesterov!r}")
        self.nesterov = bool(nesterov)

    def _extra(self):
        return self.momentum, 0.0, 0.0

    def hyper(self):
        vector = super().hyper()
        vector[codes.HYPER_NESTEROV] = 1.0 if self.nesterov else 0.0
        return vector

    def _fields(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "alpha": self.alpha,
                "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad: G ← G + g²;  θ ← θ − η g / (√G + ε) (one state row: G)."""

    name, code, n_state_slots = "adagrad", codes.ADAGRAD, 1

    def __init__(self, learning_rate=0.01, eps=1e-8, weight_decay=0.0, alpha=0.0):
        super().__init__(learning_rate, weight_decay, alpha)
        self.eps = _real(eps, "eps", 0.0, low_open=True)

    def _extra(self):
        return 0.0, 0.0, self.eps

    def _fields(self):
        return {"learning_rate": self.learning_rate, "eps": self.eps,
                "weight_decay": self.weight_decay, "alpha": self.alpha}


class RMSProp(Optimizer):
    """RMSProp: E ← ρE + (1 − ρ)g²;  θ ← θ − η g / (√E + ε) (one state row: E)."""

    name, code, n_state_slots = "rmsprop", codes.RMSPROP, 1

    def __init__(self, learning_rate=0.001, rho=0.9, eps=1e-8, weight_decay=0.0, alpha=0.0):
        super().__init__(learning_rate, weight_decay, alpha)
        self.rho = _real(rho, "rho", 0.0, 1.0)
        self.eps = _real(eps, "eps", 0.0, low_open=True)

    def _extra(self):
        return self.rho, 0.0, self.eps

    def _fields(self):
        return {"learning_rate": self.learning_rate, "rho": self.rho, "eps": self.eps,
                "weight_decay": self.weight_decay, "alpha": self.alpha}


class Adam(Optimizer):
    """Adam: bias-corrected moving averages of g and g² (two state rows: m, v)."""

    name, code, n_state_slots = "adam", codes.ADAM, 2

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 alpha=0.0):
        super().__init__(learning_rate, weight_decay, alpha)
        self.beta1 = _real(beta1, "beta1", 0.0, 1.0)
        self.beta2 = _real(beta2, "beta2", 0.0, 1.0)
        self.eps = _real(eps, "eps", 0.0, low_open=True)

    def _extra(self):
        return self.beta1, self.beta2, self.eps

    def _fields(self):
        return {"learning_rate": self.learning_rate, "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps, "weight_decay": self.weight_decay, "alpha": self.alpha}


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Adagrad, RMSProp, Adam)}
assert {name: cls.code for name, cls in OPTIMIZERS.items()} == codes.OPTIMIZER_CODES


def optimizer_from_config(config):
    """The optimiser ``Optimizer.to_config`` described (a checkpoint's training state).

    A configuration saved before ``alpha`` and ``nesterov`` existed lacks them: the
    constructors' defaults (alpha 0, no Nesterov) fill them in.
    """
    fields = dict(config)
    return lookup(OPTIMIZERS, fields.pop("name", None), "optimizer")(**fields)


def get_optimizer(optimizer=None, learning_rate=None):
    """An ``Optimizer`` from a name, a class, an instance, or None (plain SGD).

    Parameters
    ----------
    optimizer : str, Optimizer subclass, Optimizer or None
        "sgd", "momentum", "adagrad", "rmsprop", "adam" (default hyper-parameters), a class,
        or a configured instance, which is returned as it is.
    learning_rate : float, optional
        η for a name, class or None; None keeps the optimiser's default.  An instance
        carries its own, so passing a different one alongside it is an error.

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones) or a bad hyper-parameter.
    TypeError
        ``optimizer`` is none of the above.
    """
    if isinstance(optimizer, Optimizer):
        if learning_rate is not None and float(learning_rate) != optimizer.learning_rate:
            raise ValueError(f"learning_rate={learning_rate!r} conflicts with {optimizer!r}; "
                             "set the learning rate on the optimizer object only")
        return optimizer
    if optimizer is None:
        cls = SGD
    elif isinstance(optimizer, str):
        cls = lookup(OPTIMIZERS, optimizer, "optimizer")
    elif isinstance(optimizer, type) and issubclass(optimizer, Optimizer) \
            and optimizer.code is not None:
        cls = optimizer
    else:
        raise TypeError(f"optimizer must be a name ({', '.join(map(repr, OPTIMIZERS))}) or an "
                        f"optimizer object such as steepest.optimizers.Adam(); got {optimizer!r}")
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)

