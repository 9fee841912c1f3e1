"""Whole-network passes on CUDA from the tiled layer kernels, with every launch queued.

A network travels as (params, sizes, activations) as on the CPU: a flat float32 parameter
vector on the device (W⁰, b⁰, W¹, b¹, …), and ``sizes``/``activations`` as host int arrays
(they decide grids, so they stay on the host).  Per-layer W and b are device views into the
flat vector; activations and deltas live in per-layer device buffers sized once per call for
the largest batch.  Nothing here synchronises with the host except reading back a loss.

A training step is 3L launches for L layers: L fused forward (matmul + bias + activation;
the output layer's left as z), one fused output kernel (output activation, loss, δᴸ), L − 1
fused δ propagations (matmul + f′) and L fused gradient-and-update kernels (θ ← θ − η∇θ, no
gradient vector).  CUDA runs launches on one stream in order, so layer l's update follows
the δ propagation that read its weights.
"""

import numpy as np

from ..codes import IDENTITY, SOFTMAX
from ._device import check_code, check_codes, cuda, flat
from .activations import launch_softmax_backward, launch_softmax_forward
from .dense import launch_backward_input, launch_forward, launch_params
from .losses import launch_activate_output, launch_loss_and_delta

__all__ = ["network_evaluate", "network_forward", "network_gradient"]


def layer_views(flat_params, sizes):
    """[(W (out, in), b (out,))] device views into a flat parameter vector."""
    views, offset = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = flat_params[offset:offset + n_out * n_in].reshape(n_out, n_in)
        offset += n_out * n_in
        views.append((W, flat_params[offset:offset + n_out]))
        offset += n_out
    return views


class Workspace:
    """Device buffers for batches of up to ``capacity`` rows: activations and deltas per layer."""

    def __init__(self, sizes, activations, capacity, inference=False):
        self.sizes = [int(s) for s in sizes]
        self.activations = [int(a) for a in activations]
        self.capacity = int(capacity)
        # acts[l] holds layer l's output; acts[0] is unused (inputs are read from X itself),
        # and for inference the output goes to the caller's array.
        kept = self.sizes[1:-1] if inference else self.sizes[1:]
        self.acts = [None] + [cuda.device_array((self.capacity, n), np.float32) for n in kept]
        self.deltas = [] if inference else [cuda.device_array((self.capacity, n), np.float32)
                                            for n in self.sizes[1:]]
        self.loss_sums = None if inference else cuda.device_array(self.capacity, np.float32)

    def forward(self, views, X, n_rows, rows=None, row_start=0, out=None, keep_z=False):
        """Fill the activations from X (rows gathered through ``rows`` when given).

        With ``keep_z`` the output layer is left as its pre-activations z, for the loss
        kernel, which applies the activation and takes exact losses from z.
        """
        n_layers = len(views)
        for layer, (W, b) in enumerate(views):
            inp = X if layer == 0 else self.acts[layer]
            target = out if (out is not None and layer == n_layers - 1) else self.acts[layer + 1]
            act = self.activations[layer]
            if keep_z and layer == n_layers - 1:
                act = IDENTITY
            launch_forward(target, inp, W, b, act, n_rows,
                           rows if layer == 0 else None, row_start)
            if act == SOFTMAX:
                width = self.sizes[layer + 1]
                launch_softmax_forward(flat(target), flat(target), n_rows, width)

    def backward(self, views, targets, X, Y_flat, loss, n_rows, scale, overwrite, loss_weight,
                 rows=None, row_start=0):
        """Loss and δᴸ, then per layer (top down) δ propagation and target += scale·∇θ.

        Adds loss_weight × row r's loss to ``loss_sums[r]``; gathers X and Y rows through
        ``rows`` when given.
        """
        n_layers = len(views)
        launch_loss_and_delta(flat(self.deltas[-1]), flat(self.acts[-1]), Y_flat, loss,
                              self.activations[-1], self.loss_sums, loss_weight, n_rows,
                              self.sizes[-1], rows, row_start)
        for layer in range(n_layers - 1, -1, -1):
            W, _ = views[layer]
            delta = self.deltas[layer]
            if layer > 0:
                below = self.deltas[layer - 1]
                act_below = self.activations[layer - 1]
                launch_backward_input(below, delta, W, self.acts[layer], act_below, n_rows)
                if act_below == SOFTMAX:
                    launch_softmax_backward(flat(below), flat(below), flat(self.acts[layer]),
                                            n_rows, self.sizes[layer])
            target_W, target_b = targets[layer]
            inp = X if layer == 0 else self.acts[layer]
            launch_params(target_W, target_b, delta, inp, scale, overwrite, n_rows,
                          rows if layer == 0 else None, row_start)

    def reset_loss(self):
        self.loss_sums.copy_to_device(np.zeros(self.capacity, np.float32))

    def read_loss(self):
        """The loss accumulated since ``reset_loss`` (waits for the queued work)."""
        return float(self.loss_sums.copy_to_host().sum(dtype=np.float64))


def network_forward(out, params, sizes, activations, X):
    """Output activations of the whole network for every row of X, computed on the device.

    params (P,), sizes (L+1,), activations (L,), X (N, sizes[0]) -> out (N, sizes[-1])
    """
    activations = check_codes("activations", activations, "activation")
    n = X.shape[0]
    if n == 0:
        return
    workspace = Workspace(sizes, activations, n, inference=True)
    workspace.forward(layer_views(params, workspace.sizes), X, n, out=out)


def network_forward_blocks(outs, params, sizes, activations, blocks):
    """``network_forward`` of each array of rows in ``blocks`` into the array of ``outs`` at
    its place, on the device (one forward pass per array: the device has rows enough to
    share in each).

    outs [(N_b, sizes[-1])], blocks [(N_b, sizes[0])]
    """
    activations = check_codes("activations", activations, "activation")  # before any launch
    for out, X in zip(outs, blocks, strict=True):
        network_forward(out, params, sizes, activations, X)


def network_evaluate(out, params, sizes, activations, loss, X, Y):
    """``network_forward`` into ``out``, and the mean over the rows of X of each sample's
    exact loss against Y (from the output pre-activations z for softmax + cross-entropy and
    sigmoid + binary cross-entropy, see ``reference.network_evaluate``).

    The last forward launch leaves z in ``out``; one row kernel applies the activation and
    takes each row's loss, which the host adds up in float64.
    params (P,), X (N, sizes[0]), Y (N, sizes[-1]) -> out (N, sizes[-1]), returns the loss
    """
    activations = check_codes("activations", activations, "activation")
    loss = check_code("loss", loss, "loss")
    n = X.shape[0]
    if n == 0:
        return float("nan")
    workspace = Workspace(sizes, activations, n, inference=True)
    workspace.forward(layer_views(params, workspace.sizes), X, n, out=out, keep_z=True)
    losses = cuda.device_array(n, np.float32)
    launch_activate_output(flat(out), flat(Y), losses, loss, workspace.activations[-1], n,
                           workspace.sizes[-1])
    return float(losses.copy_to_host().sum(dtype=np.float64)) / n


def network_gradient(grads, params, sizes, activations, loss, X, Y):
    """Backpropagation: the gradient of the batch-mean loss over all of X, and that loss
    (exact, as in ``network_evaluate``).

    params (P,), X (B, sizes[0]), Y (B, sizes[-1]) -> grads (P,), returns the loss
    """
    activations = check_codes("activations", activations, "activation")
    loss = check_code("loss", loss, "loss")
    n = X.shape[0]
    workspace = Workspace(sizes, activations, n)
    views = layer_views(params, workspace.sizes)
    workspace.reset_loss()
    workspace.forward(views, X, n, keep_z=True)
    workspace.backward(views, layer_views(grads, workspace.sizes), X, flat(Y), loss, n, 1.0,
                       True, 1.0 / n)
    return workspace.read_loss()
