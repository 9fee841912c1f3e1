"""What a network's outputs mean, and how targets and predictions map onto them.

A network reads its outputs in one of four ways, fixed by its output activation, its
width and whether it is multi-label:

=============  ===========================  ==================================  ============
kind           network                      ``predict``                         accuracy
=============  ===========================  ==================================  ============
values         identity output              the outputs: (n,) or (n, k)         none
binary         one output, any other        0/1: output above the range's mid   of labels
multiclass     k > 1 outputs                argmax: labels 0..k-1               of labels
multilabel     k > 1 outputs, multilabel    0/1 per output, (n, k)              per label
=============  ===========================  ==================================  ============

``OUTPUT_RANGES`` is the one table behind the binary and multi-label rules: a label's two
target values are the ends of its output's range (0 and 1 for sigmoid, −1 and 1 for tanh),
and an output reads back as 1 above the middle of that range.
"""

import numpy as np

from .validation import _writable_float32

# (value of label 0, value of label 1) for each output activation that can classify
OUTPUT_RANGES = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0),
                 "relu": (0.0, 1.0)}
# losses whose targets are probabilities: a target outside [0, 1] gives a negative loss
PROBABILITY_LOSSES = ("cross_entropy", "binary_cross_entropy")


def output_kind(output, n_outputs, multilabel):
    """"values", "binary", "multiclass" or "multilabel" (see the module's table)."""
    if output == "identity":
        return "values"
    if n_outputs == 1:
        return "binary"
    return "multilabel" if multilabel else "multiclass"


def looks_multilabel(y, output, n_outputs):
    """Whether y is a multi-hot target matrix for a sigmoid output: every entry 0 or 1, and
    some row with other than exactly one 1 (so not one-hot class labels)."""
    array = np.asarray(y)
    if output != "sigmoid" or n_outputs < 2 or array.ndim != 2 \
            or array.shape[1] != n_outputs or array.dtype.kind not in "biuf":
        return False
    return _binary_values(array) and not np.all(np.count_nonzero(array, axis=1) == 1)


def check_targets(y, n_samples, output, n_outputs, kind, loss, name="y"):
    """(targets float32 (n_samples, n_outputs), truth) for a network that reads its outputs
    as ``kind``; truth is what accuracy compares predictions with (int labels (n,), 0/1
    (n, k) for multi-label), or None when y holds values rather than labels."""
    array = np.asarray(y)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers; got dtype {array.dtype}")
    if array.ndim == 0 or array.shape[0] != n_samples:
        got = "a scalar" if array.ndim == 0 else f"{array.shape[0]} rows"
        raise ValueError(f"{name} must have one row per sample of X ({n_samples}); got {got}")
    if kind == "binary":
        targets, truth = _binary_targets(array, output, name)
    elif array.ndim == 1 and n_outputs > 1:
        targets, truth = _one_hot_targets(array, n_outputs, kind, name)
    else:
        targets, truth = _given_targets(array, n_samples, output, n_outputs, kind, name)
    if loss in PROBABILITY_LOSSES and (targets.min() < 0 or targets.max() > 1):
        raise ValueError(f"{name}: loss {loss!r} needs targets in [0, 1] (probabilities); got "
                         f"values from {targets.min():g} to {targets.max():g}")
    return targets, truth


def _binary_targets(array, output, name):
    """One output: labels 0/1 (or −1/+1, or booleans) become the ends of the output's range;
    other numbers are targets as given (soft labels), without accuracy."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape ({array.shape[0]},) or ({array.shape[0]}, 1) "
                         f"for a network with one output; got shape {array.shape}")
    _check_finite(array, name)
    if _binary_values(array) or _binary_values(array, low=-1):
        truth = (array > 0).astype(np.int64)
        low, high = OUTPUT_RANGES[output]
        targets = np.where(truth == 1, high, low).astype(np.float32)[:, None]
        return targets, truth
    if array.dtype.kind in "iu":
        raise ValueError(f"{name}: class labels of a one-output network must be 0 and 1 (or -1 "
                         f"and 1); got values from {array.min()} to {array.max()}")
    return _writable_float32(array[:, None]), None


def _one_hot_targets(array, n_outputs, kind, name):
    """Integer class labels 0..k-1 as one-hot rows."""
    if kind == "multilabel":
        raise ValueError(f"{name}: a multi-label network takes 0/1 targets of shape "
                         f"({array.shape[0]}, {n_outputs}); got shape {array.shape}")
    labels = _check_labels(array, n_outputs, name)
    targets = np.zeros((array.shape[0], n_outputs), np.float32)
    targets[np.arange(array.shape[0]), labels] = 1.0
    return targets, labels


def _given_targets(array, n_samples, output, n_outputs, kind, name):
    """Targets of the network's output shape; the truth accuracy needs, where there is one."""
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != n_outputs:
        raise ValueError(f"{name} must be integer class labels of shape ({n_samples},) or targets "
                         f"of shape ({n_samples}, {n_outputs}); got shape {array.shape}")
    _check_finite(array, name)
    if kind == "multiclass":
        return _writable_float32(array), array.argmax(axis=1)
    if kind == "multilabel" and _binary_values(array):
        truth = (array > 0).astype(np.int64)
        low, high = OUTPUT_RANGES[output]
        return np.where(truth == 1, high, low).astype(np.float32), truth
    return _writable_float32(array), None


def predictions(out, output, kind):
    """``predict``'s answer for outputs ``out`` (n, k), read as ``kind``."""
    if kind == "values":
        return out[:, 0] if out.shape[1] == 1 else out
    if kind == "multiclass":
        return out.argmax(axis=1)
    decided = (out > _middle(output)).astype(np.int64)
    return decided[:, 0] if kind == "binary" else decided


def accuracies(out, truth, output, kind):
    """{"accuracy": share of labels predicted right} and, for multi-label networks,
    "subset_accuracy": the share of samples with every label right."""
    # an identity output given class labels (a linear classifier) is read by its argmax
    decided = out.argmax(axis=1) if kind == "values" else predictions(out, output, kind)
    right = decided == truth
    if kind != "multilabel":
        return {"accuracy": float(np.mean(right))}
    return {"accuracy": float(np.mean(right)), "subset_accuracy": float(np.mean(right.all(axis=1)))}


def probabilities(out, output, kind):
    """Class probabilities from outputs (n, k): rows that sum to 1 whose argmax is the
    predicted class ((n, 2) for one output); per-label probabilities for multi-label."""
    if kind == "values":
        raise ValueError("a network with an identity output gives values, not probabilities; "
                         "use forward(X) for its outputs")
    if output == "softmax":
        return out.copy()
    low, high = OUTPUT_RANGES[output]
    p = np.clip((out - low) / (high - low), 0.0, 1.0, dtype=np.float32)
    if kind == "binary":
        return np.hstack([1 - p, p])
    if kind == "multilabel":
        return p
    total = p.sum(axis=1, keepdims=True)
    # all-zero rows (relu outputs, fully saturated sigmoids) carry no preference: uniform
    return np.where(total > 0, p / np.where(total > 0, total, 1), np.float32(1 / p.shape[1]))


def _check_labels(array, n_outputs, name):
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or inf")
        fractional = array[array != np.round(array)]
        if fractional.size:
            raise ValueError(f"{name}: class labels must be whole numbers; got {fractional[0]!r}")
    labels = array.astype(np.int64)
    n_classes = max(n_outputs, 2)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_classes:
        raise ValueError(f"{name}: class labels must lie in 0..{n_classes - 1} for a network with "
                         f"{n_outputs} output(s); got values from {low} to {high}")
    return labels


def _middle(output):
    low, high = OUTPUT_RANGES[output]
    return (low + high) / 2


def _binary_values(array, low=0):
    """Whether every entry of ``array`` is ``low`` or 1."""
    return bool(np.all((array == low) | (array == 1)))


def _check_finite(array, name):
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
