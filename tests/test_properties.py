"""Property tests (hypothesis): kernels on random shapes and values against the reference,
and the file readers on random and mutated bytes failing only with their documented errors."""

import gzip
import os
import struct
import tempfile

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import steepest
from steepest.data import IDXError, read_idx
from steepest.kernels import codes, cpu, reference
from steepest.models.checkpoint import CheckpointError

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
finite = st.floats(-4, 4, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def dense_case(draw):
    b, n_in, n_out = (draw(st.integers(1, 9)) for _ in range(3))
    inp = draw(arrays(np.float32, (b, n_in), elements=finite))
    W = draw(arrays(np.float32, (n_out, n_in), elements=finite))
    bias = draw(arrays(np.float32, (n_out,), elements=finite))
    dout = draw(arrays(np.float32, (b, n_out), elements=finite))
    return inp, W, bias, dout


@SETTINGS
@given(dense_case())
def test_dense_kernels_match_reference(case):
    inp, W, b, dout = case
    atol = 1e-4 * (1 + inp.shape[1])
    out = np.empty((inp.shape[0], W.shape[0]), np.float32)
    ref = np.empty((inp.shape[0], W.shape[0]))
    cpu.dense_forward(out, inp, W, b)
    reference.dense_forward(ref, inp.astype(float), W.astype(float), b.astype(float))
    assert_close(out, ref, rtol=1e-5, atol=atol)
    dW, db = np.empty_like(W), np.empty_like(b)
    cpu.dense_backward_params(dW, db, dout, inp)
    rW, rb = np.empty(W.shape), np.empty(b.shape)
    reference.dense_backward_params(rW, rb, dout.astype(float), inp.astype(float))
    assert_close(dW, rW, rtol=1e-5, atol=1e-4 * (1 + inp.shape[0]))
    assert_close(db, rb, rtol=1e-5, atol=1e-4 * (1 + inp.shape[0]))


@SETTINGS
@given(st.sampled_from(sorted(codes.ACTIVATION_CODES)), st.integers(1, 6), st.integers(1, 9),
       st.data())
def test_activations_match_reference(name, b, n, data):
    z = data.draw(arrays(np.float32, (b, n), elements=st.floats(-60, 60, width=32)))
    a, ref = np.empty_like(z), np.empty(z.shape)
    cpu.activation_forward(a, z, codes.ACTIVATION_CODES[name])
    reference.activation_forward(ref, z.astype(float), codes.ACTIVATION_CODES[name])
    assert_close(a, ref, rtol=1e-5, atol=1e-6)


@SETTINGS
@given(st.lists(st.integers(1, 7), min_size=2, max_size=4), st.integers(1, 6),
       st.sampled_from([("sigmoid", "sigmoid", "mse"), ("tanh", "softmax", "cross_entropy"),
                        ("relu", "identity", "mse")]), st.integers(0, 2**32 - 1))
def test_network_gradient_matches_reference(sizes, n, kinds, seed):
    hidden, output, loss = kinds
    if output == "softmax" and sizes[-1] < 2:
        sizes[-1] = 2
    rng = np.random.default_rng(seed)
    sizes = np.array(sizes, np.int64)
    acts = np.array([codes.ACTIVATION_CODES[hidden]] * (len(sizes) - 2)
                    + [codes.ACTIVATION_CODES[output]], np.int64)
    n_params = int(sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(sizes) - 1)))
    params = rng.standard_normal(n_params).astype(np.float32)
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)]
    got = np.empty_like(params)
    value = cpu.network_gradient(got, params, sizes, acts, codes.LOSS_CODES[loss], X, Y)
    ref = np.empty(n_params)
    ref_value = reference.network_gradient(ref, params.astype(float), sizes, acts,
                                           codes.LOSS_CODES[loss], X.astype(float), Y.astype(float))
    assert value == pytest.approx(ref_value, rel=1e-4, abs=1e-6)
    assert_close(got, ref, rtol=1e-3, atol=1e-5)


def idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


GOOD_IDX = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


@st.composite
def mutated(draw, original):
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "cut" and data:
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@SETTINGS
@given(st.one_of(st.binary(max_size=64), mutated(GOOD_IDX), mutated(gzip.compress(GOOD_IDX))))
def test_idx_reader_only_raises_idx_errors(tmp_path, blob):
    path = tmp_path / "f.idx"
    path.write_bytes(blob)
    try:
        array = read_idx(path)
    except IDXError as exc:
        assert str(path) in str(exc)
    else:
        raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        assert array.dtype == np.uint8 and array.size == len(raw) - 4 - 4 * array.ndim


def _checkpoint_bytes():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.npz")
        steepest.Network([3, 2, 2], seed=0).save(path)
        with open(path, "rb") as handle:
            return handle.read()


GOOD_CHECKPOINT = _checkpoint_bytes()


@SETTINGS
@given(st.one_of(st.binary(max_size=64), mutated(GOOD_CHECKPOINT)))
def test_checkpoint_reader_only_raises_checkpoint_errors(tmp_path, blob):
    path = tmp_path / "c.npz"
    path.write_bytes(blob)
    try:
        net = steepest.Network.load(path)
    except CheckpointError as exc:
        assert "c.npz" in str(exc)
    else:  # a mutation the zip format tolerates must still give a consistent network
        assert net.sizes == [3, 2, 2] and net._params.shape == (14,)
