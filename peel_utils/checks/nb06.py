"""Checks of notebook 06 (deployment): quantisation by hand, per tensor (quantize_tensor with dequantize) and
per output channel (quantize_per_channel).

Besides the workbook's own implementation (the catalog's references: storage.quantize_weight), torch's own
quantisers are out of reach while the student's code runs: the torch functions in TORCH_FUNCTIONS and
TORCH_OPS are replaced by stand-ins that raise guard.ReferenceCalled, and the Python functions in
TORCH_PYTHON (observers' qparams, the decomposed quantise ops, torchao's when it is imported) are blocked
by the guard. An answer that reaches any of them fails with the catalog's DELEGATION message.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator

import torch

from . import answer_key, catalog, fixtures, guard
from .core import call, exercise_check, fail, passed

TORCH_FUNCTIONS = ("quantize_per_tensor", "quantize_per_channel", "quantize_per_tensor_dynamic",
                   "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
                   "_fake_quantize_learnable_per_tensor_affine", "_fake_quantize_learnable_per_channel_affine",
                   "_make_per_tensor_quantized_tensor", "_make_per_channel_quantized_tensor")
TORCH_OPS = ("quantize_per_tensor", "quantize_per_channel", "fake_quantize_per_tensor_affine",
             "fake_quantize_per_channel_affine")  # torch.ops.aten.<name>
TORCH_PYTHON = ("torch.ao.quantization.observer:UniformQuantizationObserverBase._calculate_qparams",
                "torch.ao.quantization.fx._decomposed:quantize_per_tensor",
                "torch.ao.quantization.fx._decomposed:quantize_per_channel",
                "torch.ao.quantization.fx._decomposed:choose_qparams_tensor")
TORCHAO_PYTHON = ("torchao.quantization.pt2e.observer:UniformQuantizationObserverBase._calculate_qparams",
                  "torchao.quantization.quant_primitives:choose_qparams_affine",
                  "torchao.quantization.quant_primitives:quantize_affine")  # blocked when torchao is imported


def _stand_in(reference: str) -> Callable:
    def blocked(*args, **kwargs):
        raise guard.ReferenceCalled(reference)
    return blocked


def _python_quantisers() -> list[str]:
    """TORCH_PYTHON, and TORCHAO_PYTHON when torchao is imported (an answer must import it to call it)."""
    found = list(TORCH_PYTHON) + (list(TORCHAO_PYTHON) if "torchao" in sys.modules else [])
    usable = []
    for reference in found:
        with contextlib.suppress(ImportError, AttributeError, TypeError):
            guard.resolve(reference)
            usable.append(reference)
    return usable


@contextlib.contextmanager
def torch_quantisers_blocked() -> Iterator[None]:
    """Within the block, torch's own quantisers raise guard.ReferenceCalled; everything is put back on exit."""
    saved: list[tuple[object, str, object]] = []
    try:
        for attr in TORCH_FUNCTIONS:
            if hasattr(torch, attr):
                saved.append((torch, attr, getattr(torch, attr)))
                setattr(torch, attr, _stand_in(f"torch:{attr}"))
        for attr in TORCH_OPS:
            with contextlib.suppress(AttributeError, RuntimeError):
                saved.append((torch.ops.aten, attr, getattr(torch.ops.aten, attr)))
                setattr(torch.ops.aten, attr, _stand_in(f"torch.ops.aten:{attr}"))
        with guard.blocked(_python_quantisers()):
            yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def _number(value) -> float | None:
    """A Python number or a one-element tensor as a float; anything else None."""
    if isinstance(value, torch.Tensor):
        return float(value.reshape(-1)[0]) if value.numel() == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-12)


def _is_integer(tensor: torch.Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def _student(name: str, what: str, fn: Callable, *args):
    __tracebackhide__ = True
    with torch_quantisers_blocked():
        return call(name, what, fn, *args)


def _codes(name: str, what: str, quantiser: Callable, w: torch.Tensor, *args) -> tuple[torch.Tensor, object, object]:
    """`quantiser(copy of w, *args)` run as the student's code: (q, scale, zero_point), after checking that it
    left its input as it was, returned three things with codes shaped like `w`, and codes that are integers."""
    __tracebackhide__ = True
    mistake = catalog.BY_NAME[name].mistake
    given = w.clone()
    out = _student(name, what, quantiser, given, *args)
    if not torch.equal(given, w):
        fail(name, f"{what}: {mistake('changes')}")
    if not (isinstance(out, (tuple, list)) and len(out) == 3 and isinstance(out[0], torch.Tensor)
            and out[0].shape == w.shape):
        fail(name, f"{what} returned {type(out).__name__}: {mistake('returns')}")
    if not _is_integer(out[0]):
        fail(name, f"{what}: codes of dtype {out[0].dtype}: {mistake('not_integers')}")
    return tuple(out)


# --- quantize_tensor and dequantize --------------------------------------------------------------

def _check_dequantize(name: str, dequantize: Callable, q: torch.Tensor, scale, zero_point, expected: torch.Tensor,
                      no_zp: torch.Tensor | None) -> None:
    __tracebackhide__ = True
    mistake = catalog.BY_NAME[name].mistake
    shown = f"{scale:.4g}, {zero_point}" if not isinstance(scale, torch.Tensor) else "<per-channel scale, zero point>"
    what = f"dequantize(q, {shown})"
    got = _student(name, what, dequantize, q.clone(), scale, zero_point)
    if not isinstance(got, torch.Tensor) or not got.is_floating_point() or got.shape != expected.shape:
        fail(name, f"{what} returned {type(got).__name__}: {mistake('dequant_wrong')}")
    got, expected = got.detach().double(), expected.double()
    if torch.allclose(got, expected, rtol=1e-5, atol=1e-7):
        return
    if no_zp is not None and torch.allclose(got, no_zp.double(), rtol=1e-5, atol=1e-7):
        fail(name, f"{what}: {mistake('dequant_zp')}")
    fail(name, f"{what}: {mistake('dequant_wrong')}")


@exercise_check("quantize_tensor")
def check_quantize_tensor(quantize_tensor: Callable, dequantize: Callable) -> None:
    """`quantize_tensor(w, bits, symmetric[, value_range])` on fixed tensors (signed values, values >= 0 as
    after a ReLU) at 2 to 8 bits, affine and symmetric, with and without a calibrated range: the codes
    (integers), the scale and the zero point exactly as the markdown defines them; then `dequantize(q, scale,
    zero_point)` = (q - zero_point) * scale, per tensor and with per-channel tensors."""
    __tracebackhide__ = True
    name = "quantize_tensor"
    mistake = catalog.BY_NAME[name].mistake
    tensors = fixtures.quant_tensors()
    for case, (tensor_name, bits, symmetric, value_range) in enumerate(fixtures.QUANT_CASES):
        exp = answer_key.quantize_expected(case)
        w = tensors[tensor_name]
        extra = (value_range,) if value_range is not None else ()
        what = (f"quantize_tensor(<{tensor_name} {tuple(w.shape)}>, bits={bits}, symmetric={symmetric}"
                + (f", value_range={value_range})" if extra else ")"))
        q, scale, zero_point = _codes(name, what, quantize_tensor, w, bits, symmetric, *extra)
        scale_f, zero_f = _number(scale), _number(zero_point)
        if scale_f is None or zero_f is None or not math.isfinite(scale_f) or not math.isfinite(zero_f):
            fail(name, f"{what} returned scale {scale!r} and zero point {zero_point!r}: {mistake('returns')}")
        if symmetric and zero_f != 0:
            fail(name, f"{what}: zero point {zero_f:g}: {mistake('symmetric_zero_point')}")
        if zero_f != round(zero_f):
            fail(name, f"{what}: zero point {zero_f:.4g}: {mistake('zp_not_rounded')}")
        if not _close(scale_f, exp["scale"]):
            for key in ("ignores_range", "zero_not_in_range", "levels"):
                if _close(scale_f, exp[key]):
                    fail(name, f"{what}: scale {scale_f:.4g}: {mistake(key)}")
            if any(_close(scale_f, s) for s in exp["symmetric_minmax"]):
                fail(name, f"{what}: scale {scale_f:.4g}: {mistake('symmetric_minmax')}")
            fail(name, f"{what}: the scale is {scale_f:.4g}, not {exp['scale']:.4g}: "
                       + ("max|w| over 2**(bits-1) - 1 steps" if symmetric else "(hi - lo) over 2**bits - 1 steps")
                       + ", the range holding 0 (value_range when given)")
        if zero_f != exp["zero_point"]:
            if exp["zp_sign"] is not None and zero_f == exp["zp_sign"]:
                fail(name, f"{what}: zero point {zero_f:g}: {mistake('zp_sign')}")
            fail(name, f"{what}: the zero point is {zero_f:g}, not {exp['zero_point']}: round(-lo / scale)")
        qmin, qmax = answer_key._levels(bits, symmetric)
        if int(q.min()) < qmin or int(q.max()) > qmax:
            fail(name, f"{what}: codes from {int(q.min())} to {int(q.max())}, outside [{qmin}, {qmax}]: "
                       f"{mistake('no_clamp')}")
        codes = q.long()
        if not torch.equal(codes, exp["q"]):
            if any(torch.equal(codes, t) for t in exp["trunc"]):
                fail(name, f"{what}: {mistake('no_round')}")
            wrong = (codes != exp["q"]).nonzero()[0].tolist()
            fail(name, f"{what}: {int((codes != exp['q']).sum())} of {codes.numel()} codes differ; w{wrong} = "
                       f"{float(w[tuple(wrong)]):.4g} got code {int(codes[tuple(wrong)])}, not "
                       f"{int(exp['q'][tuple(wrong)])}: round(w / scale) + zero_point, clamped to [{qmin}, {qmax}]")
        _check_dequantize(name, dequantize, exp["q"], exp["scale"], exp["zero_point"], exp["deq"],
                          exp["deq_no_zp"] if exp["zero_point"] else None)
    channel = answer_key.per_channel_expected(0)
    _check_dequantize(name, dequantize, channel["q"], channel["scale"], channel["zero_point"],
                      (channel["q"] - channel["zero_point"]) * channel["scale"], channel["q"] * channel["scale"])
    passed("quantize_tensor gives the integer codes, scale and zero point, affine and symmetric, clamped to a "
           "calibrated range; dequantize gives (q - zero_point) * scale, per tensor and per channel")


# --- quantize_per_channel ------------------------------------------------------------------------

@exercise_check("quantize_per_channel")
def check_quantize_per_channel(quantize_per_channel: Callable) -> None:
    """`quantize_per_channel(w, bits, symmetric)` on a conv weight (4, 3, 3, 3) with channels of different
    ranges, one all zero and one all positive, and on a linear weight (5, 6): one scale and zero point per
    output channel, shaped (C_out, 1, ...), scale 1 for the all-zero channel, the codes as per tensor."""
    __tracebackhide__ = True
    name = "quantize_per_channel"
    mistake = catalog.BY_NAME[name].mistake
    tensors = fixtures.quant_tensors()
    for case, (tensor_name, bits, symmetric) in enumerate(fixtures.PER_CHANNEL_CASES):
        exp = answer_key.per_channel_expected(case)
        w = tensors[tensor_name]
        what = f"quantize_per_channel(<{tensor_name} {tuple(w.shape)}>, bits={bits}, symmetric={symmetric})"
        q, scale, zero_point = _codes(name, what, quantize_per_channel, w, bits, symmetric)
        channels, inputs = w.shape[0], w.shape[1]
        shape = (channels, *[1] * (w.dim() - 1))
        scale = torch.as_tensor(scale).detach()
        zero_point = torch.as_tensor(zero_point).detach()
        for value in (scale, zero_point):
            if tuple(value.shape) != shape and not (value is zero_point and value.numel() == 1 and symmetric):
                if value.numel() == inputs or (value.dim() > 1 and value.shape[1] == inputs):
                    fail(name, f"{what}: shape {tuple(value.shape)}: {mistake('wrong_axis')}")
                if value.numel() == 1:
                    fail(name, f"{what}: {mistake('per_tensor')}")
                if value.numel() == channels:
                    fail(name, f"{what}: shape {tuple(value.shape)}, not {shape}: {mistake('shape')}")
                fail(name, f"{what}: scale of shape {tuple(scale.shape)}: {mistake('returns')}")
        scale, zero_point = scale.double().expand(shape), zero_point.double().expand(shape)
        zero = exp["zero_channels"]
        live = [c for c in range(channels) if c not in zero]
        if zero and (not torch.isfinite(scale[zero]).all() or (scale[zero] <= 0).any()
                     or not torch.equal(q[zero].double(), zero_point[zero].expand_as(q[zero]))):
            fail(name, f"{what}: channel {zero[0]} is all zero: {mistake('zero_channel')}")
        got = scale[live].reshape(-1)
        want = exp["scale"][live].reshape(-1)
        if not torch.allclose(got, want, rtol=1e-5, atol=0):
            if torch.allclose(got, torch.full_like(got, exp["per_tensor"]), rtol=1e-5, atol=0):
                fail(name, f"{what}: {mistake('per_tensor')}")
            fail(name, f"{what}: the scales are {[float(f'{s:.4g}') for s in got]}, not "
                       f"{[float(f'{s:.4g}') for s in want]} (each output channel's own range, as per tensor)")
        if not torch.equal(zero_point[live], exp["zero_point"][live].double()):
            fail(name, f"{what}: the zero points are {zero_point[live].reshape(-1).tolist()}, not "
                       f"{exp['zero_point'][live].reshape(-1).tolist()} (round(-lo / scale) per channel; 0 if symmetric)")
        if not torch.equal(q.long(), exp["q"]):
            fail(name, f"{what}: {int((q.long() != exp['q']).sum())} of {q.numel()} codes differ: each channel's "
                       "codes as quantize_tensor would give them with that channel's scale and zero point")
    passed("quantize_per_channel gives one scale and zero point per output channel, scale 1 for an all-zero "
           "channel, and the same codes as per tensor within each channel")
