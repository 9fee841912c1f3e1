"""``minimize``: plain gradient descent on a function of a point, with the whole path kept.

The lesson before networks: x ← x − η∇f(x), watched step by step.  On f(x) = x² from 5 with
η = 0.3 each step multiplies x by 1 − 2η = 0.4 (5, 2, 0.8, 0.32, …); at η = 1 the factor
is −1 and x bounces between 5 and −5 for ever; above 1 |x| grows every step.  Works for a
scalar x and for points in n dimensions; with no gradient given, ∇f is estimated by central
differences.  Float64 NumPy throughout: this is for small functions and for seeing, not for
speed (networks train through the compiled kernels instead).  A path that diverges is still
returned whole, with a ``DivergenceWarning`` naming the step where it went wrong.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from .validation import check_count, check_positive_real

# |x| or |f(x)| beyond this counts as gone: the path stops before it overflows to inf
BLOW_UP = 1e150


class DivergenceWarning(RuntimeWarning):
    """``minimize``'s path diverged: it blew up, or ended with f higher than it started.

    A warning, not an error: the diverging path is itself a lesson, and it is returned.
    """


@dataclass
class Trajectory:
    """The path of gradient descent, start included.

    Attributes
    ----------
    points : ndarray
        Every point visited, start first: shape (steps + 1,) for a scalar x0, else
        (steps + 1, n).
    values : ndarray (steps + 1,)
        f at each point.
    learning_rate : float
        The η used.
    diverged : bool
        The path blew up (a non-finite or huge x or f(x); the steps stop there) or ended with
        f higher than where it started (beyond rounding).  ``minimize`` then also warns
        (``DivergenceWarning``).
    converged : bool
        The last step moved x by less than ``tol`` (relative to the size of x).
    """

    points: np.ndarray
    values: np.ndarray
    learning_rate: float
    diverged: bool
    converged: bool

    @property
    def x(self):
        """The last point."""
        return self.points[-1]

    @property
    def steps(self):
        """Steps taken (may be fewer than asked when the path blew up)."""
        return len(self.points) - 1

    def __len__(self):
        return len(self.points)

    def __repr__(self):
        state = "diverged" if self.diverged else ("converged" if self.converged else "running")
        return (f"Trajectory(learning_rate={self.learning_rate}, steps={self.steps}, "
                f"x={np.round(self.x, 6).tolist()}, f(x)={self.values[-1]:.6g}, {state})")


def numerical_gradient(f, x, h=1e-5):
    """Central differences: ∂f/∂xᵢ ≈ (f(x + hᵢeᵢ) − f(x − hᵢeᵢ)) / 2hᵢ, hᵢ = h·max(1, |xᵢ|).

    x : float64 (n,) -> float64 (n,); the error is O(h²) for smooth f.
    """
    x = np.asarray(x, np.float64)
    grad = np.empty_like(x)
    for i in range(x.size):
        step = h * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        grad[i] = (f(up) - f(down)) / (2 * step)
    return grad


def minimize(f, x0, grad=None, learning_rate=0.1, epochs=100, tol=1e-12):
    """Gradient descent x ← x − η∇f(x) from ``x0``; returns the whole ``Trajectory``.

    Parameters
    ----------
    f : callable
        f(x) -> float.  Called with a float for a scalar ``x0``, else with a float64 array.
    x0 : float or array-like (n,)
        The start.
    grad : callable, optional
        ∇f(x), same shape as x.  By default, central differences of f.
    learning_rate : float
        η > 0.
    epochs : int
        Steps to take (the path has epochs + 1 points unless it blows up first).
    tol : float
        Relative step size below which the path counts as converged (it keeps stepping:
        the trajectory always has every step asked for, so paths can be compared).

    Warns
    -----
    DivergenceWarning
        The path diverged (see ``Trajectory.diverged``): the message names the first step
        with f above f(x0), how the path ended, and the learning rate.  A RuntimeWarning.

    Examples
    --------
    >>> minimize(lambda x: x ** 2, 5.0, learning_rate=0.3, epochs=3).points
    array([5.  , 2.  , 0.8 , 0.32])
    """
    if not callable(f):
        raise TypeError(f"f must be a function of x; got {f!r}")
    if grad is not None and not callable(grad):
        raise TypeError(f"grad must be a function of x or None; got {grad!r}")
    learning_rate = check_positive_real(learning_rate, "learning_rate")
    epochs = check_count(epochs, "epochs", 0)
    scalar = np.ndim(x0) == 0
    try:
        x = np.array(x0, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"x0 must be a number or a 1-D array of numbers; got {x0!r}") from None
    if np.ndim(x0) > 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"x0 must be a finite number or a non-empty 1-D array; got {x0!r}")

    def as_user(point):
        return float(point[0]) if scalar else point.copy()

    def gradient(point):
        if grad is None:
            return numerical_gradient(value_at, point)
        g = np.asarray(grad(as_user(point)), np.float64).reshape(-1)
        if g.shape != point.shape:
            raise ValueError(f"grad returned {g.size} values for a point of {point.size}")
        return g

    def value_at(point):
        value = np.asarray(f(as_user(point)))
        if value.size != 1:
            raise ValueError(f"f must return one number; got an array of shape {value.shape}")
        return float(value.reshape(()))

    points, values = [x.copy()], [value_at(x)]
    blew_up = not np.isfinite(values[0])
    moved = np.inf
    for _ in range(epochs):
        if blew_up:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            step = learning_rate * gradient(x)
            x = x - step
            value = value_at(x) if np.isfinite(x).all() else np.inf
        points.append(x.copy())
        values.append(value)
        moved = float(np.max(np.abs(step)) / max(1.0, float(np.max(np.abs(x)))))
        blew_up = not (np.isfinite(value) and np.isfinite(x).all()
                       and abs(value) < BLOW_UP and np.max(np.abs(x)) < BLOW_UP)
    points = np.array(points)
    values = np.array(values)
    if scalar:
        points = points[:, 0]
    # "ended higher than it started", with room for rounding: at η = 1 on x² a numerical
    # gradient leaves f a hair above f(x0) although the path only oscillates
    above_start = values > values[0] + 1e-6 * max(1.0, abs(values[0]))
    diverged = bool(blew_up or above_start[-1])
    converged = bool(not diverged and moved < tol)
    if diverged:
        warnings.warn(_divergence_message(values, above_start, blew_up, learning_rate),
                      DivergenceWarning, stacklevel=2)
    return Trajectory(points, values, learning_rate, diverged, converged)


def _divergence_message(values, above_start, blew_up, learning_rate):
    """Where the path went wrong: its first step above f(x0), and how it ended."""
    last = len(values) - 1
    rose = np.flatnonzero(above_start)
    first = (f"f first rose above f(x0) = {values[0]:.6g} at step {rose[0]}" if rose.size
             else f"f became {values[-1]} at step {last}")  # NaN compares with nothing
    ending = (f"blew up at step {last} (f = {values[-1]:.6g})" if blew_up
              else f"ended at f = {values[-1]:.6g} after {last} step{'s' * (last != 1)}")
    return (f"gradient descent diverged: {first}, and the path {ending}. "
            f"learning_rate={learning_rate} is too large here: try a smaller one")


def plot_trajectories(f, trajectories, path, title=None):
    """Draw f with each trajectory on its own panel, side by side, to the PNG file ``path``.

    A 1-D f is drawn as its curve with the path's points on it; a 2-D f as contour lines with
    the path across them.  Needs matplotlib (``pip install 'steepest[plot]'``).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("drawing needs matplotlib: pip install 'steepest[plot]' "
                          "(or pip install matplotlib)") from None
    if not trajectories:
        raise ValueError("trajectories is empty: nothing to draw")
    n = len(trajectories)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.6), squeeze=False)
    for ax, path_ in zip(axes[0], trajectories):
        pts = np.asarray(path_.points)
        state = ("diverged" if path_.diverged else
                 "converged" if path_.converged else f"{path_.steps} steps")
        ax.set_title(f"η = {path_.learning_rate:g} ({state})", fontsize=10)
        # the view: the start and the sane part of the path, not a diverged path's far end
        shown = pts[: _first_far_point(pts)]
        if pts.ndim == 1:
            lo, hi = _span(shown)
            grid = np.linspace(lo, hi, 400)
            ax.plot(grid, [f(float(g)) for g in grid], color="0.6", lw=1.5)
            ys = [f(float(p)) for p in shown]
            ax.plot(shown, ys, "-o", color="tab:red", ms=4, lw=1)
            ax.plot(shown[:1], ys[:1], "s", color="black", ms=6)
            ax.set_xlim(lo, hi)
            ax.set_xlabel("x")
            ax.set_ylabel("f(x)")
        else:
            (x_lo, x_hi), (y_lo, y_hi) = _span(shown[:, 0]), _span(shown[:, 1])
            gx, gy = np.meshgrid(np.linspace(x_lo, x_hi, 200), np.linspace(y_lo, y_hi, 200))
            gz = np.array([[f(np.array([a, b])) for a, b in zip(ra, rb)] for ra, rb in zip(gx, gy)])
            ax.contour(gx, gy, np.log1p(gz - gz.min()), levels=20, cmap="viridis", linewidths=0.8)
            ax.plot(shown[:, 0], shown[:, 1], "-o", color="tab:red", ms=3, lw=1)
            ax.plot(shown[:1, 0], shown[:1, 1], "s", color="black", ms=6)
            ax.set_xlim(x_lo, x_hi)
            ax.set_ylim(y_lo, y_hi)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _first_far_point(points):
    """Index past the last point within 4× the start's distance from the origin (at least 2)."""
    size = np.abs(points).reshape(len(points), -1).max(axis=1)
    limit = 4.0 * max(size[0], 1e-3)
    far = np.nonzero(~(size <= limit))[0]
    return max(2, int(far[0])) if far.size else len(points)


def _span(values):
    lo, hi = float(np.min(values)), float(np.max(values))
    reach = max(abs(lo), abs(hi), 1e-3)
    lo, hi = min(lo, -0.2 * reach), max(hi, 0.2 * reach)  # keep the minimum's side in view
    pad = 0.1 * (hi - lo)
    return lo - pad, hi + pad


# Functions for the lessons and for ``python -m steepest descend``: name -> (f, ∇f, x0, text).
def _quadratic(x):
    return x * x


def _quadratic_grad(x):
    return 2.0 * x


def _bowl(p):
    return float(p[0] ** 2 + 10.0 * p[1] ** 2)


def _bowl_grad(p):
    return np.array([2.0 * p[0], 20.0 * p[1]])


def _rosenbrock(p):
    return float((1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2)


def _rosenbrock_grad(p):
    return np.array([-2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] ** 2),
                     200.0 * (p[1] - p[0] ** 2)])


FUNCTIONS = {
    "quadratic": (_quadratic, _quadratic_grad, 5.0, "f(x) = x²"),
    "bowl": (_bowl, _bowl_grad, (-4.0, 1.5), "f(x, y) = x² + 10y²: an elongated bowl"),
    "rosenbrock": (_rosenbrock, _rosenbrock_grad, (-1.2, 1.0),
                   "f(x, y) = (1 − x)² + 100(y − x²)²: a curved valley"),
}
