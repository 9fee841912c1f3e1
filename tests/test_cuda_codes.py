"""An unknown activation, loss or optimiser code is an error in every CUDA launcher.

Device code cannot raise usefully, so each public launcher checks its codes on the host and
raises ValueError naming the argument and the bad value before it queues anything.  A kernel
launched directly with an unknown code computes NaN, never a plausible number.  On the
simulator when there is no GPU.
"""

import inspect

import numpy as np
import pytest
from helpers import needs_cuda

from steepest.kernels import codes

pytestmark = needs_cuda

BAD = 99
SIZES = np.array([3, 4, 2], np.int64)
N_PARAMS = 4 * 3 + 4 + 2 * 4 + 2
GOOD = {"activation": codes.TANH, "activations": [codes.TANH, codes.SOFTMAX],
        "loss": codes.CROSS_ENTROPY, "optimizer": codes.ADAM}
# the argument whose code is checked -> what a bad one looks like there
BAD_VALUES = {"activation": BAD, "activations": [codes.TANH, BAD], "loss": BAD,
              "optimizer": BAD}
KNOWN = {"activation": "0 (identity), 1 (sigmoid), 2 (tanh), 3 (relu), 4 (softmax)",
         "activations": "0 (identity), 1 (sigmoid), 2 (tanh), 3 (relu), 4 (softmax)",
         "loss": "0 (mse), 1 (cross_entropy), 2 (mae), 3 (binary_cross_entropy)",
         "optimizer": "0 (sgd), 1 (momentum), 2 (adagrad), 3 (rmsprop), 4 (adam)"}


@pytest.fixture(scope="module")
def cuda_set():
    """(the CUDA kernel set, numba.cuda); imported here so collection never loads numba.cuda."""
    from steepest.kernels import _cuda
    from steepest.kernels import cuda as kernels

    return kernels, _cuda.load()


def _arrays(cuda, rng):
    host = {"params": rng.standard_normal(N_PARAMS), "grads": rng.standard_normal(N_PARAMS),
            "state": np.zeros((2, N_PARAMS)), "X": rng.standard_normal((5, 3)),
            "Y": np.eye(2)[[0, 1, 1, 0, 1]], "out": np.full((5, 2), np.nan),
            "hyper": np.array([0.1, 0.0, 0.9, 0.999, 1e-7])}
    dev = {name: cuda.to_device(value.astype(np.float32)) for name, value in host.items()}
    dev["order"] = cuda.to_device(np.arange(5, dtype=np.int64))
    dev["step"] = cuda.to_device(np.array([3], np.int64))
    return dev


def _call(kernels, d, name, c):
    """Launcher ``name`` on small valid arrays, with the codes in ``c``."""
    acts, loss, opt = c["activations"], c["loss"], c["optimizer"]
    net = (SIZES, acts, loss, d["X"], d["Y"])
    calls = {
        "activation_forward": lambda: kernels.activation_forward(d["out"], d["Y"],
                                                                 c["activation"]),
        "activation_backward": lambda: kernels.activation_backward(d["out"], d["Y"], d["Y"],
                                                                   c["activation"]),
        "loss_value": lambda: kernels.loss_value(d["Y"], d["Y"], loss),
        "output_delta": lambda: kernels.output_delta(d["out"], d["Y"], d["Y"], loss,
                                                     c["activation"]),
        "network_forward": lambda: kernels.network_forward(d["out"], d["params"], SIZES, acts,
                                                           d["X"]),
        "network_forward_blocks": lambda: kernels.network_forward_blocks(
            [d["out"][:2], d["out"][2:]], d["params"], SIZES, acts, [d["X"][:2], d["X"][2:]]),
        "network_evaluate": lambda: kernels.network_evaluate(d["out"], d["params"], *net),
        "network_gradient": lambda: kernels.network_gradient(d["grads"], d["params"], *net),
        "sgd_epoch_minibatch": lambda: kernels.sgd_epoch_minibatch(d["params"], *net,
                                                                   d["order"], 2, 0.1),
        "sgd_epoch_per_sample": lambda: kernels.sgd_epoch_per_sample(d["params"], *net,
                                                                     d["order"], 0.1),
        "gd_step_full_batch": lambda: kernels.gd_step_full_batch(d["params"], *net, 0.1),
        "optimizer_epoch_minibatch": lambda: kernels.optimizer_epoch_minibatch(
            d["params"], d["state"], d["step"], SIZES, acts, loss, opt, d["hyper"], d["X"],
            d["Y"], d["order"], 2),
        "optimizer_step": lambda: kernels.optimizer_step(d["params"], d["state"], d["step"],
                                                         d["grads"], opt, d["hyper"]),
        # a sweep of one network: its rows are views of the arrays above
        "sweep_sgd_epoch": lambda: kernels.sweep_sgd_epoch(
            d["params"].reshape(1, N_PARAMS), *net, d["order"], 2, np.array([0.1]),
            np.array([1]), np.empty(1, np.float32)),
        "sweep_optimizer_epoch": lambda: kernels.sweep_optimizer_epoch(
            d["params"].reshape(1, N_PARAMS), d["state"].reshape(1, 2, N_PARAMS),
            d["step"].reshape(1, 1), SIZES, acts, loss, opt, d["hyper"].reshape(1, 5), d["X"],
            d["Y"], d["order"], 2, np.array([1]), np.empty(1, np.float32)),
    }
    return calls[name]()


CHECKED = {  # launcher: the code arguments it takes
    "activation_forward": ["activation"],
    "activation_backward": ["activation"],
    "loss_value": ["loss"],
    "output_delta": ["loss", "activation"],
    "network_forward": ["activations"],
    "network_forward_blocks": ["activations"],
    "network_evaluate": ["activations", "loss"],
    "network_gradient": ["activations", "loss"],
    "sgd_epoch_minibatch": ["activations", "loss"],
    "sgd_epoch_per_sample": ["activations", "loss"],
    "gd_step_full_batch": ["activations", "loss"],
    "optimizer_epoch_minibatch": ["activations", "loss", "optimizer"],
    "optimizer_step": ["optimizer"],
    "sweep_sgd_epoch": ["activations", "loss"],
    "sweep_optimizer_epoch": ["activations", "loss", "optimizer"],
}


def test_every_launcher_that_takes_a_code_is_checked_here(cuda_set):
    kernels, _ = cuda_set
    takes_codes = {name: [p for p in inspect.signature(getattr(kernels, name)).parameters
                          if p in GOOD]
                   for name in kernels.__all__}
    assert {name: args for name, args in takes_codes.items() if args} == CHECKED


@pytest.mark.parametrize("name,argument",
                         [(name, argument) for name, args in CHECKED.items()
                          for argument in args])
def test_a_bad_code_is_a_value_error_before_any_launch(cuda_set, rng, name, argument):
    kernels, cuda = cuda_set
    d = _arrays(cuda, rng)
    _call(kernels, d, name, GOOD)  # the valid call runs (and may train a step)
    before = {k: d[k].copy_to_host() for k in ("params", "state", "step", "out", "grads")}
    named = rf"{argument}\[1\]" if argument == "activations" else argument
    with pytest.raises(ValueError, match=rf"^{named} code {BAD} is not one of ") as caught:
        _call(kernels, d, name, {**GOOD, argument: BAD_VALUES[argument]})
    assert str(caught.value).endswith(KNOWN[argument])
    for k, value in before.items():  # nothing was launched
        np.testing.assert_array_equal(d[k].copy_to_host(), value, err_msg=k)


@pytest.mark.parametrize("bad", [1.5, "relu", None, -1, 5])
def test_codes_must_be_known_integers(cuda_set, rng, bad):
    kernels, cuda = cuda_set
    d = _arrays(cuda, rng)
    with pytest.raises(ValueError, match=r"^activation code .* is not one of "):
        kernels.activation_forward(d["out"], d["Y"], bad)


def test_numpy_integer_codes_and_device_code_arrays_are_accepted(cuda_set, rng):
    kernels, cuda = cuda_set
    d = _arrays(cuda, rng)
    kernels.activation_forward(d["out"], d["Y"], np.int64(codes.RELU))
    np.testing.assert_array_equal(d["out"].copy_to_host(), d["Y"].copy_to_host())
    acts = np.array(GOOD["activations"], np.int64)
    kernels.network_forward(d["out"], d["params"], SIZES, cuda.to_device(acts), d["X"])
    host_out = np.empty((5, 2), np.float32)
    kernels.network_forward(d["out"], d["params"], SIZES, acts, d["X"])
    d["out"].copy_to_host(host_out)
    assert np.isfinite(host_out).all()
    with pytest.raises(ValueError, match=r"^activations\[0\] code 7 is not one of "):
        kernels.network_forward(d["out"], d["params"], SIZES,
                                cuda.to_device(np.array([7, codes.SOFTMAX], np.int64)), d["X"])


def test_kernels_launched_with_an_unknown_code_compute_nan(cuda_set):
    # below the launchers' check: the device functions give NaN, never identity or MSE
    from steepest.kernels.cuda import activations, losses

    _, cuda = cuda_set
    z = cuda.to_device(np.linspace(-1, 1, 6).astype(np.float32))
    y = cuda.to_device(np.full(6, 0.5, np.float32))
    out = cuda.device_array(6, np.float32)
    activations._activation_forward_kernel[1, 32](out, z, BAD)
    assert np.isnan(out.copy_to_host()).all()
    activations._activation_backward_kernel[1, 32](out, z, z, BAD)
    assert np.isnan(out.copy_to_host()).all()
    row_losses = cuda.device_array(2, np.float32)
    losses._row_losses_kernel[1, 32](row_losses, z, y, 2, 3, BAD)
    assert np.isnan(row_losses.copy_to_host()).all()
    one = np.float32(1.0)
    for loss, activation in [(BAD, codes.IDENTITY), (codes.MSE, BAD)]:
        losses._output_delta_kernel[1, 32](out, z, y, 2, 3, loss, activation, one)
        assert np.isnan(out.copy_to_host()).all(), (loss, activation)
