"""A 16-lane float32 vector value for ``@njit`` code: registers that LLVM cannot spill to memory.

Why this exists: numba arrays carry no aliasing information, so an accumulator kept in an
array (``z[o] += v * W[i, o]``) is loaded and stored on every step of a reduction, and LLVM's
loop vectoriser then prefers to vectorise the wrong loop (the reduction, with gathers).  A
value of type ``f32x16`` is an LLVM ``<16 x float>`` held in a variable, so a reduction
over the nonzero inputs of a sample keeps its accumulators in registers.

The IR is generic LLVM vector code, not x86 intrinsics: on AVX-512 one value is one zmm
register, on AVX2 two ymm registers, on SSE or ARM four 128-bit registers, so the kernels
built on it run (and are cached) on any CPU numba supports.

Only what the fused training kernels need is here; this is not a general SIMD library.

The arithmetic operators (+ − · / and unary −, with a float32 scalar on either side
broadcast to every lane) and ``exp``, ``relu`` and ``positive`` take a vector or a float32
alike, so the formulas of ``_maths.py`` are written once and serve the scalar loops and the
16-lane ones.
"""

import operator

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

from ._jit import JIT_OPTIONS

LANES = 16

_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, LANES)
_FAST = ("nsz", "arcp", "contract", "reassoc", "afn")  # as in _jit.FASTMATH: no nnan/ninf


class F32x16(types.Type):
    """Sixteen float32 lanes in one SSA value."""

    def __init__(self):
        super().__init__(name="f32x16")


f32x16 = F32x16()


@register_model(F32x16)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _is_array(arr, dtype):
    """A contiguous 1-D array of ``dtype`` (read-only allowed: loads from X or a table)."""
    return (isinstance(arr, types.Array) and arr.dtype == dtype and arr.ndim == 1
            and arr.layout == "C")


def _is_f32_array(arr):
    return _is_array(arr, types.float32)


def _lane_pointer(context, builder, arrty, arr, start):
    ary = context.make_array(arrty)(context, builder, arr)
    ptr = builder.gep(ary.data, [start])
    return builder.bitcast(ptr, _VEC.as_pointer())


@intrinsic
def vload(typingctx, arr, start):
    """arr[start:start + 16] as a vector (no bounds check: the caller pads its arrays)."""
    if not (_is_f32_array(arr) and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        start = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.load(_lane_pointer(context, builder, sig.args[0], args[0], start), align=4)

    return f32x16(arr, start), codegen


@intrinsic
def vstore(typingctx, arr, start, vec):
    """arr[start:start + 16] = vec."""
    if not (_is_f32_array(arr) and isinstance(start, types.Integer) and vec == f32x16):
        return None

    def codegen(context, builder, sig, args):
        start = context.cast(builder, args[1], sig.args[1], types.intp)
        builder.store(args[2], _lane_pointer(context, builder, sig.args[0], args[0], start),
                      align=4)
        return context.get_dummy_value()

    return types.none(arr, start, vec), codegen


def _splat(builder, scalar):
    first = builder.insert_element(ir.Constant(_VEC, ir.Undefined), scalar,
                                   ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, ir.Constant(_VEC, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


def _fma(builder, a, b, c):
    """a·b + c with one rounding, always: an explicit llvm.fma rather than fmul + fadd with
    the contract flag, whose fusing LLVM decides case by case, so that the same kernel
    rounds the same way however it was compiled (in-process, from the cache, inlined)."""
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3),
                                        "llvm.fma.v16f32")
    return builder.call(fn, [a, b, c])


@intrinsic
def vsplat(typingctx, scalar):
    """All 16 lanes set to a float32 scalar."""
    if scalar != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0])

    return f32x16(scalar), codegen


@intrinsic
def vzero(typingctx):
    """All 16 lanes 0."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, [0.0] * LANES)

    return f32x16(), codegen


@intrinsic
def vfma(typingctx, acc, scale, vec):
    """acc + scale·vec, with scale a float32 scalar broadcast to every lane."""
    if not (acc == f32x16 and scale == types.float32 and vec == f32x16):
        return None

    def codegen(context, builder, sig, args):
        return _fma(builder, _splat(builder, args[1]), args[2], args[0])

    return f32x16(acc, scale, vec), codegen


@intrinsic
def vmuladd(typingctx, acc, a, b):
    """acc + a·b lane by lane."""
    if not (acc == f32x16 and a == f32x16 and b == f32x16):
        return None

    def codegen(context, builder, sig, args):
        return _fma(builder, args[1], args[2], args[0])

    return f32x16(acc, a, b), codegen


def _binary(op):
    def typer(typingctx, a, b):
        if not (a == f32x16 and b == f32x16):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1], flags=_FAST)

        return f32x16(a, b), codegen

    return typer


vadd = intrinsic(_binary("fadd"))
vadd.__doc__ = "a + b lane by lane."
vmul = intrinsic(_binary("fmul"))
vmul.__doc__ = "a · b lane by lane."


@intrinsic
def vsum(typingctx, vec):
    """The sum of the 16 lanes (in an order of LLVM's choosing: a tree)."""
    if vec != f32x16:
        return None

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_F32, [_F32, _VEC])
        fn = cgutils.get_or_insert_function(builder.module, fnty,
                                            "llvm.vector.reduce.fadd.v16f32")
        # reassoc lets LLVM reduce as a tree instead of 16 serial adds
        return builder.call(fn, [ir.Constant(_F32, 0.0), args[0]], fastmath=_FAST)

    return types.float32(vec), codegen


vsub = intrinsic(_binary("fsub"))
vsub.__doc__ = "a − b lane by lane."


@intrinsic
def vdiv(typingctx, a, b):
    """a / b lane by lane, correctly rounded (no reciprocal estimate)."""
    if not (a == f32x16 and b == f32x16):
        return None

    def codegen(context, builder, sig, args):
        return builder.fdiv(args[0], args[1])

    return f32x16(a, b), codegen


@intrinsic
def vrelu(typingctx, vec):
    """max(x, 0) lane by lane, as ``relu_forward``: a NaN lane gives 0."""
    if vec != f32x16:
        return None

    def codegen(context, builder, sig, args):
        zero = ir.Constant(_VEC, [0.0] * LANES)
        return builder.select(builder.fcmp_ordered(">", args[0], zero), args[0], zero)

    return f32x16(vec), codegen


@intrinsic
def vpositive(typingctx, vec):
    """1 where x > 0, else 0 (ReLU's derivative from its output)."""
    if vec != f32x16:
        return None

    def codegen(context, builder, sig, args):
        zero = ir.Constant(_VEC, [0.0] * LANES)
        one = ir.Constant(_VEC, [1.0] * LANES)
        return builder.select(builder.fcmp_ordered(">", args[0], zero), one, zero)

    return f32x16(vec), codegen


def _const(value):
    return ir.Constant(_VEC, [value] * LANES)


@intrinsic
def vexp(typingctx, vec):
    """eˣ lane by lane (Cephes' expf: Cody–Waite reduction and a degree-6 polynomial).

    Within 2 ulp of the true value on [−87.3, 88.3] (up to ln(FLT_MAX) ≈ 88.72 it stays at
    e^88.37 = 2.4e38, where σ's 1/(1 + eˣ) is ~4e−39 either way); above it overflows to inf
    and below −104 it is 0, like the library's expf (so σ(−100) is exactly 0 and a saturated
    sigmoid has exactly zero gradient, as on the layer path); between −104 and −87.3, where
    expf gives subnormals, it gives 1.2e−38.  A NaN lane stays NaN.
    """
    if vec != f32x16:
        return None

    def codegen(context, builder, sig, args):
        x = args[0]
        # clamp with compare+select, not minnum/maxnum, which would turn NaN into a number
        x = builder.select(builder.fcmp_ordered("<", x, _const(-87.33)), _const(-87.33), x)
        x = builder.select(builder.fcmp_ordered(">", x, _const(88.37)), _const(88.37), x)
        rint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC]),
                                              "llvm.rint.v16f32")
        n = builder.call(rint, [builder.fmul(x, _const(1.44269504088896341))])
        # no fast-math flags here: re-association would undo the two-part ln 2
        r = builder.fsub(builder.fsub(x, builder.fmul(n, _const(0.693359375))),
                         builder.fmul(n, _const(-2.12194440e-4)))
        p = _const(1.9875691500e-4)
        for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
                  5.0000001201e-1):
            p = builder.fadd(builder.fmul(p, r, flags=("contract",)), _const(c),
                             flags=("contract",))
        r2 = builder.fmul(r, r)
        y = builder.fadd(builder.fadd(builder.fmul(p, r2, flags=("contract",)), r), _const(1.0))
        i32x = ir.VectorType(ir.IntType(32), LANES)
        bits = builder.shl(builder.add(builder.fptosi(n, i32x),
                                       ir.Constant(i32x, [127] * LANES)),
                           ir.Constant(i32x, [23] * LANES))
        result = builder.fmul(y, builder.bitcast(bits, _VEC))
        original = args[0]
        result = builder.select(builder.fcmp_ordered(">", original, _const(88.72283)),
                                _const(float("inf")), result)
        return builder.select(builder.fcmp_ordered("<", original, _const(-103.972)),
                              _const(0.0), result)

    return f32x16(vec), codegen


@intrinsic
def compact8(typingctx, idx, n, x, start, table):
    """Append to idx[n:] the positions (start + j) of the nonzero x[start + j], j < 8.

    One 8-lane compare gives an 8-bit mask; ``table`` (256 × 8 int32, see
    ``nonzero_position_table``) turns the mask into the positions of its set bits, which
    are stored as one 8-lane block (so idx needs 8 spare slots at its end).  Returns the new
    count n + popcount(mask).  NaN counts as nonzero, so it still reaches the loss.
    """
    if not (_is_array(idx, types.int32) and _is_array(table, types.int32)
            and isinstance(n, types.Integer)
            and isinstance(start, types.Integer) and _is_f32_array(x)):
        return None

    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        f32x8, i32x8 = ir.VectorType(_F32, 8), ir.VectorType(i32, 8)
        idx_arr = context.make_array(sig.args[0])(context, builder, args[0])
        x_arr = context.make_array(sig.args[2])(context, builder, args[2])
        tab_arr = context.make_array(sig.args[4])(context, builder, args[4])
        n = context.cast(builder, args[1], sig.args[1], types.intp)
        start = context.cast(builder, args[3], sig.args[3], types.intp)
        values = builder.load(builder.bitcast(builder.gep(x_arr.data, [start]),
                                              f32x8.as_pointer()), align=4)
        nonzero = builder.fcmp_unordered("!=", values, ir.Constant(f32x8, [0.0] * 8))
        mask = builder.bitcast(nonzero, ir.IntType(8))
        row = builder.mul(builder.zext(mask, i64), ir.Constant(i64, 8))
        offsets = builder.load(builder.bitcast(builder.gep(tab_arr.data, [row]),
                                               i32x8.as_pointer()), align=4)
        first = builder.insert_element(ir.Constant(i32x8, ir.Undefined),
                                       builder.trunc(start, i32), ir.Constant(i32, 0))
        base = builder.shuffle_vector(first, ir.Constant(i32x8, ir.Undefined),
                                      ir.Constant(i32x8, [0] * 8))
        builder.store(builder.add(offsets, base),
                      builder.bitcast(builder.gep(idx_arr.data, [n]), i32x8.as_pointer()),
                      align=4)
        count = builder.zext(builder.ctpop(mask), i64)
        return builder.add(n, count)

    return types.intp(idx, n, x, start, table), codegen


def nonzero_position_table():
    """256 × 8 int32: row m lists the set bits of m (lowest first), padded with 0."""
    import numpy as np

    table = np.zeros((256, 8), np.int32)
    for mask in range(256):
        bits = [j for j in range(8) if mask >> j & 1]
        table[mask, :len(bits)] = bits
    return table.ravel()


@intrinsic
def prefetch(typingctx, arr, index):
    """Hint the CPU to bring the cache line of arr[index] into cache (no effect on results).

    For shuffled training: the next rows of X live at random places in a large array, and
    without a hint each one costs a full trip to memory when the loop reaches it.
    """
    if not (isinstance(arr, types.Array) and isinstance(index, types.Integer)):
        return None
    if arr.ndim != 1 or arr.layout != "C":
        return types.none(arr, index), lambda context, builder, sig, args: (
            context.get_dummy_value())  # only a hint: strided rows go without

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        ptr = builder.bitcast(builder.gep(ary.data, [index]), i8p)
        # read, keep in all cache levels, data cache
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(arr, index), codegen


# ------------------------------------------------------------------ one formula, both kinds
# Operators and functions that accept a vector or a float32 scalar, so that a formula of
# _maths.py compiles for either.  With a vector, each is the intrinsic above (a scalar operand
# splat), the very IR the fused kernels wrote by hand before these existed.
def _is_float(t):
    return isinstance(t, types.Float)


def _vector_operator(op, vector_op):
    @overload(op, jit_options=JIT_OPTIONS)
    def _impl(a, b):
        if a == f32x16 and b == f32x16:
            return lambda a, b: vector_op(a, b)
        if _is_float(a) and b == f32x16:
            return lambda a, b: vector_op(vsplat(np.float32(a)), b)
        if a == f32x16 and _is_float(b):
            return lambda a, b: vector_op(a, vsplat(np.float32(b)))
        return None


for _op, _vector in ((operator.add, vadd), (operator.sub, vsub), (operator.mul, vmul),
                     (operator.truediv, vdiv)):
    _vector_operator(_op, _vector)


@overload(operator.neg, jit_options=JIT_OPTIONS)
def _neg(a):
    if a == f32x16:
        return lambda a: vsub(vzero(), a)
    return None


def exp(x):
    """eˣ of a float32 (the library's expf) or of each lane of a vector (``vexp``)."""
    raise NotImplementedError("compiled only: call from @njit code")


def relu(x):
    """max(x, 0); a NaN gives 0."""
    raise NotImplementedError("compiled only: call from @njit code")


def positive(x):
    """1 where x > 0, else 0 (a NaN gives 0)."""
    raise NotImplementedError("compiled only: call from @njit code")


def _register_generic(function, vector, scalar):
    @overload(function, jit_options=JIT_OPTIONS)
    def _impl(x):
        if x == f32x16:
            return vector
        if _is_float(x):
            return scalar
        return None


_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_register_generic(exp, lambda x: vexp(x), lambda x: np.exp(x))
_register_generic(relu, lambda x: vrelu(x), lambda x: x if x > _ZERO else _ZERO)
_register_generic(positive, lambda x: vpositive(x), lambda x: _ONE if x > _ZERO else _ZERO)
