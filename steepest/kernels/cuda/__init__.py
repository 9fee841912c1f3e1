"""``@cuda.jit`` kernels (numba-cuda) with the names, signatures and meaning of ``reference``.

Each public name is a launcher: it takes device arrays (outputs first, as on the CPU), works
out grid and block, and queues the private ``_…_kernel``.  Launchers that return a number
(losses, training loops) read it back, which waits for the queued work.  Importing this
package imports numba.cuda (through ``steepest.kernels._cuda``); only the CUDA backend does.
CUDA contracts multiply-adds into FMA and sums in another order than the CPU, so results
agree with ``cpu`` and ``reference`` to a tolerance, not bit for bit.
"""

from .activations import (
    activation_backward,
    activation_forward,
    identity_backward,
    identity_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_backward,
    softmax_forward,
    step_forward,
    tanh_backward,
    tanh_forward,
)
from .dense import dense_backward_input, dense_backward_params, dense_forward
from .loops import (
    gd_step_full_batch,
    optimizer_epoch_minibatch,
    sgd_epoch_minibatch,
    sgd_epoch_per_sample,
)
from .losses import (
    binary_cross_entropy_loss,
    binary_cross_entropy_loss_backward,
    cross_entropy_loss,
    cross_entropy_loss_backward,
    loss_value,
    mae_loss,
    mae_loss_backward,
    mse_loss,
    mse_loss_backward,
    output_delta,
    sigmoid_binary_cross_entropy_backward,
    softmax_cross_entropy_backward,
)
from .network import (
    network_evaluate,
    network_forward,
    network_forward_blocks,
    network_gradient,
)
from .optimizers import (
    adagrad_step,
    adam_step,
    momentum_step,
    optimizer_step,
    rmsprop_step,
    sgd_step,
)
from .sweeps import sweep_optimizer_epoch, sweep_sgd_epoch

__all__ = [
    "activation_backward", "activation_forward", "cross_entropy_loss",
    "cross_entropy_loss_backward", "dense_backward_input", "dense_backward_params",
    "dense_forward", "gd_step_full_batch", "identity_backward", "identity_forward",
    "loss_value", "mse_loss", "mse_loss_backward", "network_evaluate", "network_forward",
    "network_forward_blocks",
    "network_gradient", "output_delta", "relu_backward", "relu_forward", "sgd_epoch_minibatch",
    "sgd_epoch_per_sample", "sgd_step", "sigmoid_backward", "sigmoid_forward",
    "softmax_backward", "softmax_cross_entropy_backward", "softmax_forward", "tanh_backward",
    "tanh_forward",
    # tutorials (issue 3): the perceptron's step, more losses, optimisers and their loop
    "adagrad_step", "adam_step", "binary_cross_entropy_loss",
    "binary_cross_entropy_loss_backward", "mae_loss", "mae_loss_backward", "momentum_step",
    "optimizer_epoch_minibatch", "optimizer_step", "rmsprop_step",
    "sigmoid_binary_cross_entropy_backward", "step_forward",
    # sweeps (issue 15): K same-shaped networks trained over one order of samples
    "sweep_optimizer_epoch", "sweep_sgd_epoch",
]
