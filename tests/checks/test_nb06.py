"""peel_utils.checks.nb06: both checks pass on notebook 06's own solutions and fail, with the message of their
mistake table, on typical wrong answers, on answers that call the workbook's implementation and on answers
that call torch's own quantisers."""

import re

import pytest
import torch
from check_helpers import mistake, solution

from peel_utils import storage
from peel_utils.checks import CheckFailed, answer_key, catalog, fixtures, nb06


def fails_with(exercise: str, key: str):
    return pytest.raises(CheckFailed, match=mistake(exercise, key))


DELEGATION = re.escape(catalog.DELEGATION.split("(")[0])


def levels(bits, symmetric):
    return (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)


def quantize(w, bits, symmetric, value_range=None, *, zero=True, divisor=None, zp_rounding=round, rounding=torch.round,
             clamp=True, zp_sign=1, symmetric_scale=None, symmetric_zp=False, codes=torch.int32):
    """quantize_tensor written out, each keyword one mistake."""
    if value_range is not None:
        lo, hi = value_range
    elif zero:
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    else:
        lo, hi = float(w.min()), float(w.max())
    qmin, qmax = levels(bits, symmetric)
    if symmetric and not symmetric_zp:
        scale = (symmetric_scale(lo, hi) if symmetric_scale else max(-lo, hi)) / (divisor or qmax)
        zero_point = 0
    else:
        scale = (hi - lo) / (divisor or (2 ** bits - 1))
        zero_point = zp_sign * zp_rounding(-lo / scale)
    q = rounding(w / scale) + zero_point
    if clamp:
        q = q.clamp(qmin, qmax)
    return (q.to(codes) if codes else q), scale, zero_point


def right_dequantize(q, scale, zero_point):
    return (q - zero_point) * scale


# --- quantize_tensor ------------------------------------------------------------------------------

def test_quantize_tensor_passes_on_solution(capsys):
    nb06.check_quantize_tensor(solution("06", "quantize_tensor"), solution("06", "dequantize"))
    out = capsys.readouterr()
    assert "✓ passed: quantize_tensor" in out.out and out.err == ""


def test_quantize_tensor_passes_on_another_right_answer(capsys):
    def float64_route(w, bits, symmetric, value_range=None):
        q, scale, zero_point = quantize(w.double(), bits, symmetric, value_range, codes=torch.int64)
        return q.to(torch.int16), torch.tensor(scale), torch.tensor(zero_point)

    nb06.check_quantize_tensor(float64_route, lambda q, s, z: (q.double() - z) * s)
    assert "✓ passed" in capsys.readouterr().out


def changes(w, bits, symmetric, value_range=None):
    out = quantize(w, bits, symmetric, value_range)
    w.mul_(0.5)
    return out


@pytest.mark.parametrize("answer, key", [
    (lambda w, b, s, r=None: quantize(w, b, s, r)[:2], "returns"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, codes=None), "not_integers"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, rounding=torch.trunc), "no_round"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, zp_rounding=lambda x: x), "zp_not_rounded"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, clamp=False), "no_clamp"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, divisor=2 ** b if not s else 2 ** (b - 1)), "levels"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, symmetric_scale=lambda lo, hi: hi), "symmetric_minmax"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, symmetric_scale=lambda lo, hi: (hi - lo) * (2 ** (b - 1) - 1)
                                      / (2 ** b - 1)), "symmetric_minmax"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, symmetric_zp=True), "symmetric_zero_point"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, zero=False), "zero_not_in_range"),
    (lambda w, b, s, r=None: quantize(w, b, s, r, zp_sign=-1), "zp_sign"),
    (lambda w, b, s, r=None: quantize(w, b, s, None), "ignores_range"),
    (changes, "changes"),
])
def test_quantize_tensor_names_each_mistake(answer, key):
    with fails_with("quantize_tensor", key):
        nb06.check_quantize_tensor(answer, right_dequantize)


@pytest.mark.parametrize("dequantize, key", [
    (lambda q, scale, zero_point: q * scale, "dequant_zp"),
    (lambda q, scale, zero_point: (q - zero_point) / scale, "dequant_wrong"),
    (lambda q, scale, zero_point: (q - zero_point) * scale.mean() if isinstance(scale, torch.Tensor)
     else (q - zero_point) * scale, "dequant_wrong"),
    (lambda q, scale, zero_point: q - zero_point, "dequant_wrong"),
])
def test_dequantize_names_each_mistake(dequantize, key):
    with fails_with("quantize_tensor", key):
        nb06.check_quantize_tensor(lambda w, b, s, r=None: quantize(w, b, s, r), dequantize)


def test_quantize_tensor_says_what_right_looks_like_for_another_wrong_answer():
    def floor(w, bits, symmetric, value_range=None):
        return quantize(w, bits, symmetric, value_range, rounding=lambda x: torch.floor(x + 0.3))

    with pytest.raises(CheckFailed, match=r"codes differ; w\[.*\] = .* got code"):
        nb06.check_quantize_tensor(floor, right_dequantize)


def test_quantize_tensor_blocks_the_package():
    def delegates(w, bits, symmetric, value_range=None):
        q, scale = storage.quantize_weight(w.reshape(1, -1))
        return q.reshape(w.shape).to(torch.int32), float(scale), 0

    with pytest.raises(CheckFailed, match=DELEGATION + r".*peel_utils\.storage\.quantize_weight"):
        nb06.check_quantize_tensor(delegates, right_dequantize)
    assert storage.quantize_weight(torch.full((1, 2), 127.0))[1].tolist() == [1.0]  # unblocked again


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")  # deprecated, and still there to be called
@pytest.mark.parametrize("delegates, reference", [
    (lambda w, b, s, r=None: torch.quantize_per_tensor(w, 0.1, 0, torch.qint8), "torch.quantize_per_tensor"),
    (lambda w, b, s, r=None: torch.fake_quantize_per_tensor_affine(w, 0.1, 0, 0, 255),
     "torch.fake_quantize_per_tensor_affine"),
    (lambda w, b, s, r=None: torch.ops.aten.quantize_per_tensor(w, 0.1, 0, torch.quint8),
     "torch.ops.aten.quantize_per_tensor"),
    (lambda w, b, s, r=None: torch.ao.quantization.MinMaxObserver()(w) is None
     or torch.ao.quantization.MinMaxObserver().calculate_qparams(),
     "torch.ao.quantization.observer.UniformQuantizationObserverBase._calculate_qparams"),
])
def test_quantize_tensor_catches_torchs_own_quantisers(delegates, reference):
    with pytest.raises(CheckFailed, match=DELEGATION + re.escape(f"({reference})")):
        nb06.check_quantize_tensor(delegates, right_dequantize)
    assert torch.quantize_per_tensor(torch.ones(2), 0.5, 0, torch.qint8).int_repr().tolist() == [2, 2]  # put back
    assert torch.ops.aten.quantize_per_tensor(torch.ones(2), 0.5, 0, torch.qint8).int_repr().tolist() == [2, 2]
    observer = torch.ao.quantization.MinMaxObserver()
    observer(torch.tensor([-1.0, 1.0]))
    assert observer.calculate_qparams()[0].item() > 0


def test_dequantize_catches_torchs_own_quantisers():
    def through_torch(q, scale, zero_point):
        return torch.quantize_per_tensor(q.float(), 1.0, 0, torch.qint32).dequantize() * scale

    with pytest.raises(CheckFailed, match=DELEGATION + re.escape("(torch.quantize_per_tensor)")):
        nb06.check_quantize_tensor(lambda w, b, s, r=None: quantize(w, b, s, r), through_torch)


def test_a_stub_passes_through_unchanged():
    def stub(*args):
        raise NotImplementedError("exercise: write your code here")

    with pytest.raises(NotImplementedError):
        nb06.check_quantize_tensor(stub, right_dequantize)
    assert torch.quantize_per_tensor is not None and "blocked" not in torch.quantize_per_tensor.__name__


# --- quantize_per_channel -------------------------------------------------------------------------

def test_quantize_per_channel_passes_on_solution(capsys):
    nb06.check_quantize_per_channel(solution("06", "quantize_per_channel"))
    out = capsys.readouterr()
    assert "✓ passed: quantize_per_channel" in out.out and out.err == ""


def by_rows(w, bits, symmetric, *, axis=0, keepdim=True, per_tensor=False, zero_guard=True, codes=torch.int32,
            zero=True):
    """quantize_per_channel through quantize_tensor on each channel (a right answer), or with one mistake."""
    moved = w.transpose(0, axis)
    if per_tensor:
        q, scale, zero_point = quantize(w, bits, symmetric)
        scales = torch.full((w.shape[0],), scale)
        zero_points = torch.full((w.shape[0],), zero_point)
        return q, scales.view(-1, *[1] * (w.dim() - 1)), zero_points.view(-1, *[1] * (w.dim() - 1))
    rows = []
    for channel in moved:
        if not channel.any() and zero_guard:
            rows.append((torch.zeros_like(channel, dtype=torch.int32), 1.0, 0))
        elif not channel.any():
            qmin, qmax = levels(bits, symmetric)
            rows.append(((channel / 0.0).nan_to_num(0.5).clamp(qmin, qmax).to(torch.int32), 0.0, 0))
        else:
            rows.append(quantize(channel, bits, symmetric, zero=zero))
    q = torch.stack([r[0] for r in rows]).transpose(0, axis)
    scale, zero_point = torch.tensor([r[1] for r in rows]), torch.tensor([r[2] for r in rows])
    if keepdim:
        shape = [1] * w.dim()
        shape[axis] = -1
        scale, zero_point = scale.view(shape), zero_point.view(shape)
    return (q if codes else q.float()), scale, zero_point


def test_quantize_per_channel_passes_on_another_right_answer(capsys):
    nb06.check_quantize_per_channel(by_rows)
    assert "✓ passed" in capsys.readouterr().out


def changes_per_channel(w, bits, symmetric):
    out = by_rows(w, bits, symmetric)
    w.zero_()
    return out


@pytest.mark.parametrize("answer, key", [
    (lambda w, b, s: by_rows(w, b, s)[0], "returns"),
    (lambda w, b, s: by_rows(w, b, s, codes=None), "not_integers"),
    (lambda w, b, s: by_rows(w, b, s, keepdim=False), "shape"),
    (lambda w, b, s: by_rows(w, b, s, axis=1), "wrong_axis"),
    (lambda w, b, s: by_rows(w, b, s, per_tensor=True), "per_tensor"),
    (lambda w, b, s: quantize(w, b, s), "per_tensor"),
    (lambda w, b, s: by_rows(w, b, s, zero_guard=False), "zero_channel"),
    (changes_per_channel, "changes"),
])
def test_quantize_per_channel_names_each_mistake(answer, key):
    with fails_with("quantize_per_channel", key):
        nb06.check_quantize_per_channel(answer)


def test_quantize_per_channel_says_what_right_looks_like_for_another_wrong_answer():
    def without_zero(w, bits, symmetric):  # each channel's range leaves out 0: the positive channel's scale is off
        return by_rows(w, bits, symmetric, zero=False)

    with pytest.raises(CheckFailed, match="the scales are .* not"):
        nb06.check_quantize_per_channel(without_zero)


def test_quantize_per_channel_blocks_the_package_and_torch():
    def package(w, bits, symmetric):
        q, scale = storage.quantize_weight(w)
        return q.to(torch.int32), scale.view(-1, *[1] * (w.dim() - 1)), torch.zeros(1)

    def torchs(w, bits, symmetric):
        scale = w.reshape(len(w), -1).abs().amax(1).clamp(min=1e-8) / 127
        qt = torch.quantize_per_channel(w, scale, torch.zeros(len(w), dtype=torch.long), 0, torch.qint8)
        return qt.int_repr(), scale, 0

    with pytest.raises(CheckFailed, match=DELEGATION + r".*peel_utils\.storage\.quantize_weight"):
        nb06.check_quantize_per_channel(package)
    with pytest.raises(CheckFailed, match=DELEGATION + re.escape("(torch.quantize_per_channel)")):
        nb06.check_quantize_per_channel(torchs)


# --- the fixed inputs ---------------------------------------------------------------------------

def test_expected_values_keep_clear_of_rounding_ties_and_tell_the_mistakes_apart():
    for case, (_, bits, symmetric, value_range) in enumerate(fixtures.QUANT_CASES):
        expected = answer_key.quantize_expected(case)
        assert expected["margin"] > 0.003, case
        assert expected["q"].dtype == torch.int64
        variants = [expected["levels"], *expected["symmetric_minmax"], expected["zero_not_in_range"],
                    expected["ignores_range"]]
        assert all(v is None or abs(v - expected["scale"]) > 1e-3 * expected["scale"] for v in variants), case
    assert any(answer_key.quantize_expected(c)["zero_not_in_range"] for c in range(len(fixtures.QUANT_CASES)))
    for case in range(len(fixtures.PER_CHANNEL_CASES)):
        expected = answer_key.per_channel_expected(case)
        assert expected["margin"] > 0.003, case
        scales = expected["scale"].reshape(-1)
        assert len(set(scales.tolist())) == len(scales)  # channels of different ranges
    assert answer_key.per_channel_expected(0)["zero_channels"] == [fixtures.ZERO_CHANNEL]
    signed = fixtures.quant_tensors()["signed"]
    assert -signed.min() > signed.max()  # max alone differs from max|w|


def test_the_workbooks_int8_form_is_the_8_bit_symmetric_per_channel_code():
    w = fixtures.quant_tensors()["conv"]
    q, scale = storage.quantize_weight(w)
    expected = answer_key._per_channel(w.double(), 8, True)
    assert torch.equal(q.long(), expected[0]) and torch.allclose(scale.double(), expected[1].reshape(-1))
