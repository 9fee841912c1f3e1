"""The four benchmark workloads and the implementations they are timed with.

W1  784-30-10, sigmoid, MSE, mini-batch 10, η = 3.0 (Nielsen, chapter 1)
W2  784-16-16-10, sigmoid, MSE, per-sample SGD (batch 1), η = 0.5
W3  784-128-64-10, ReLU hidden, softmax + cross-entropy, mini-batch 128, η = 0.1
W4  inference of W1's network (after one W1 epoch) over the 10,000 test images

Every implementation starts from the same float32 parameters and visits the samples in the
same (seeded, shuffled) order, so times and accuracies are comparable within one run:

* ``steepest``  the library's CPU kernels, called as ``Network.fit`` calls them;
* ``numpy``     a vectorised NumPy version of the same maths (one matmul per layer per batch);
* ``torch``     PyTorch CPU eager (``nn.Linear`` layers, ``optim.SGD``), when torch is installed.

MSE is ½‖a − y‖² per sample averaged over the batch (steepest's definition, not
``torch.nn.functional.mse_loss``, which also averages over the 10 outputs).
"""

from dataclasses import dataclass

import numpy as np

import steepest
from steepest.kernels import codes

N_TRAIN = 50_000
SMOKE_TRAIN = 1_000   # samples per epoch when benchmarks are disabled (the test-run smoke pass)
SMOKE_TEST = 500
ORDER_SEED = 1234


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple
    hidden: str
    output: str
    loss: str
    batch_size: int
    learning_rate: float

    @property
    def activation_codes(self):
        codes_ = [codes.ACTIVATION_CODES[self.hidden]] * (len(self.sizes) - 2)
        return np.array(codes_ + [codes.ACTIVATION_CODES[self.output]], np.int64)

    @property
    def loss_code(self):
        return codes.LOSS_CODES[self.loss]

    def initial_network(self):
        return steepest.Network(list(self.sizes), activation=self.hidden, output=self.output,
                                loss=self.loss, seed=0)


TRAINING = {
    "W1": Workload("W1", (784, 30, 10), "sigmoid", "sigmoid", "mse", 10, 3.0),
    "W2": Workload("W2", (784, 16, 16, 10), "sigmoid", "sigmoid", "mse", 1, 0.5),
    "W3": Workload("W3", (784, 128, 64, 10), "relu", "softmax", "cross_entropy", 128, 0.1),
}
INFERENCE = TRAINING["W1"]  # W4 runs W1's network forward


def load_data(smoke):
    """(X, Y one-hot, y, X_test, y_test, order) as float32 / int64, sliced in smoke mode."""
    X, y, Xt, yt = steepest.load_mnist()
    n = SMOKE_TRAIN if smoke else N_TRAIN
    X, y = np.ascontiguousarray(X[:n]), y[:n]
    if smoke:
        Xt, yt = np.ascontiguousarray(Xt[:SMOKE_TEST]), yt[:SMOKE_TEST]
    Y = np.eye(10, dtype=np.float32)[y]
    order = np.random.default_rng(ORDER_SEED).permutation(n)
    return X, Y, y, Xt, yt, order


def split_params(params, sizes):
    """Flat steepest parameters -> lists of W (out, in) and b (out,) float32 copies."""
    Ws, bs, offset = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        Ws.append(params[offset:offset + n_out * n_in].reshape(n_out, n_in).copy())
        offset += n_out * n_in
        bs.append(params[offset:offset + n_out].copy())
        offset += n_out
    return Ws, bs


def accuracy(out, labels):
    return float(np.mean(np.argmax(out, axis=1) == labels))


# ----------------------------------------------------------------------------- steepest
def steepest_epoch(work, params, X, Y, order):
    """One epoch through the library's CPU kernels; returns the mean loss."""
    from steepest.kernels import cpu

    sizes = np.array(work.sizes, np.int64)
    lr = np.float32(work.learning_rate)
    if work.batch_size == 1:
        return cpu.sgd_epoch_per_sample(params, sizes, work.activation_codes, work.loss_code,
                                        X, Y, order, lr)
    return cpu.sgd_epoch_minibatch(params, sizes, work.activation_codes, work.loss_code, X, Y,
                                   order, work.batch_size, lr)


def steepest_forward(work, params, X):
    from steepest.kernels import cpu

    out = np.empty((X.shape[0], work.sizes[-1]), np.float32)
    cpu.network_forward(out, params, np.array(work.sizes, np.int64), work.activation_codes, X)
    return out


# ----------------------------------------------------------------------------- NumPy
def _np_activate(z, name):
    if name == "sigmoid":
        return np.float32(1.0) / (np.float32(1.0) + np.exp(-z))
    if name == "relu":
        return np.maximum(z, np.float32(0.0))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def _np_derivative(a, name):
    if name == "sigmoid":
        return a * (np.float32(1.0) - a)
    if name == "relu":
        return (a > 0).astype(np.float32)
    raise ValueError(name)


def numpy_forward(work, Ws, bs, X):
    a = X
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        last = layer == len(Ws) - 1
        a = _np_activate(a @ W.T + b, work.output if last else work.hidden)
    return a


def numpy_epoch(work, Ws, bs, X, Y, order):
    """One epoch of the same SGD, vectorised over each batch; Ws, bs updated in place."""
    lr = np.float32(work.learning_rate)
    n = order.shape[0]
    total = 0.0
    for start in range(0, n, work.batch_size):
        idx = order[start:start + work.batch_size]
        acts = [X[idx]]
        y = Y[idx]
        for layer, (W, b) in enumerate(zip(Ws, bs)):
            last = layer == len(Ws) - 1
            acts.append(_np_activate(acts[-1] @ W.T + b, work.output if last else work.hidden))
        a, rows = acts[-1], np.float32(len(idx))
        if work.loss == "cross_entropy":  # softmax output: δ = (a − y) / B
            total += -float(np.sum(y * np.log(np.maximum(a, np.float32(1e-12)))))
            delta = (a - y) / rows
        else:                             # MSE: δ = (a − y) ⊙ f′ / B
            total += 0.5 * float(np.sum((a - y) ** 2))
            delta = (a - y) / rows * _np_derivative(a, work.output)
        for layer in range(len(Ws) - 1, -1, -1):
            dW = delta.T @ acts[layer]
            db = delta.sum(axis=0)
            if layer > 0:
                delta = (delta @ Ws[layer]) * _np_derivative(acts[layer], work.hidden)
            Ws[layer] -= lr * dW
            bs[layer] -= lr * db
    return total / n


# ----------------------------------------------------------------------------- PyTorch
def torch_available():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


class TorchMLP:
    """The workload's network as ``nn.Linear`` layers, trained eagerly with ``optim.SGD``."""

    def __init__(self, work, Ws, bs):
        import torch

        self.torch, self.work = torch, work
        self.layers = []
        for W, b in zip(Ws, bs):
            layer = torch.nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(W))
                layer.bias.copy_(torch.from_numpy(b))
            self.layers.append(layer)
        self.params = [p for layer in self.layers for p in layer.parameters()]
        self.optimizer = torch.optim.SGD(self.params, lr=work.learning_rate)

    def logits(self, x):
        torch = self.torch
        hidden = torch.sigmoid if self.work.hidden == "sigmoid" else torch.relu
        for layer in self.layers[:-1]:
            x = hidden(layer(x))
        return self.layers[-1](x)

    def forward(self, x):
        z = self.logits(x)
        return self.torch.sigmoid(z) if self.work.output == "sigmoid" else z.softmax(dim=1)

    def epoch(self, X, Y, labels, order):
        """One epoch; X, Y, labels and order are torch tensors (converted once, untimed)."""
        torch, work = self.torch, self.work
        F = torch.nn.functional
        for start in range(0, order.shape[0], work.batch_size):
            idx = order[start:start + work.batch_size]
            x, y = X[idx], Y[idx]
            if work.loss == "cross_entropy":
                loss = F.cross_entropy(self.logits(x), labels[idx])
            else:
                loss = 0.5 * ((torch.sigmoid(self.logits(x)) - y) ** 2).sum() / len(idx)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    def predict(self, X):
        with self.torch.no_grad():
            return self.forward(X).numpy()
