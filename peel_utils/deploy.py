"""Deployment: turning a float model into one that is small on disk and fast on a CPU.

Three routes, each measured in notebook 06: `compile_frozen` (torch.compile with inductor's freezing,
which folds the weights into the compiled graph), `Autocast` (bf16 arithmetic through autocast), and
`quantize_int8` (int8 weights and activations through PT2E: `torch.export`, then torchao's
`prepare_pt2e` with `X86InductorQuantizer`, calibration, `convert_pt2e`). An int8 model is only fast
once it is compiled with freezing on: inductor then fuses the quantise/dequantise pairs into oneDNN's
int8 convolutions (VNNI or AMX instructions where the CPU has them).

`MODELS` and `VARIANTS` are the one table of what notebook 06 and benchmarks/deploy_latency.py deploy, and
`build_variant` the one recipe that makes each; `what_to_deploy` reads notebook 06's table of them (accuracies as
fractions; `plots.plot_variants` draws it, `plots.plot_error_against_bits` the hand quantisation's error). The int8
form on disk is `storage`'s (`storage.int8_state_dict`). Introduced in notebook 06.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd
import torch
import torch.nn as nn

from . import measure, report

# ---------------------------------------------------------------------------------------------
# What the CPU can do


@dataclass(frozen=True)
class CpuCapability:
    """The CPU's vector instruction set as torch sees it, and the int8 / bf16 extensions present."""

    capability: str      # torch.backends.cpu.get_cpu_capability(): "AVX512", "AVX2", "DEFAULT", ...
    vnni: bool           # int8 dot products in one instruction (AVX512-VNNI or AVX-VNNI)
    amx: bool            # Advanced Matrix Extensions tiles (int8 and bf16 matrix multiply)
    avx512_bf16: bool    # bf16 dot products

    def describe(self) -> str:
        """One plain sentence on what this CPU offers int8 and bf16 inference."""
        extras = [name for name, present in (("VNNI", self.vnni), ("AMX", self.amx),
                                             ("AVX512-BF16", self.avx512_bf16)) if present]
        missing = [name for name, present in (("VNNI", self.vnni), ("AMX", self.amx)) if not present]
        text = f"torch's CPU capability is {self.capability}"
        text += f", with {', '.join(extras)}" if extras else ", without VNNI, AMX or AVX512-BF16"
        if not self.vnni and not self.amx:
            text += ("; int8 still runs but without int8 dot-product instructions, so expect little or "
                     "no gain from int8 over fp32")
        elif missing:
            text += f" (no {' or '.join(missing)})"
        return text + "."


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_capability() -> CpuCapability:
    """Read the CPU's capability from torch (and /proc/cpuinfo's flags where torch has no probe).

    Introduced in notebook 06: int8 speed-ups depend on VNNI or AMX being there, so the notebook
    says what this machine has before it times anything.
    """
    flags = _cpu_flags()

    def probe(name: str, flag_names: tuple[str, ...]) -> bool:
        check = getattr(torch.cpu, name, None)
        if check is not None:
            try:
                return bool(check())
            except RuntimeError:
                pass
        return any(flag in flags for flag in flag_names)

    return CpuCapability(capability=torch.backends.cpu.get_cpu_capability(),
                         vnni=probe("_is_vnni_supported", ("avx512_vnni", "avx_vnni")),
                         amx=probe("_is_amx_tile_supported", ("amx_tile", "amx_int8")),
                         avx512_bf16=probe("_is_avx512_bf16_supported", ("avx512_bf16",)))


# ---------------------------------------------------------------------------------------------
# Faster forward passes: compile with freezing, bf16 autocast, int8


class Deployed(nn.Module):
    """A compiled inference-only model: forward runs under no_grad with inductor's freezing on.

    Freezing is read when inductor compiles, which happens at the first call for each input shape,
    so it is switched on (torch._inductor.config.patch) around every call and restored after; the
    rest of the program keeps torch's default. The compiled graph holds its weights as constants,
    so a deep copy returns the same object (copying would only recompile the same thing) and the
    model has one empty parameter that tells measure.measure_latency its device.
    """

    def __init__(self, model: nn.Module, dynamic: bool = False):
        super().__init__()
        self.model = model
        self.compiled = torch.compile(model, dynamic=dynamic)
        self.anchor = nn.Parameter(torch.empty(0, device=_device_of(model)), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch._inductor.config as inductor_config

        with torch.no_grad(), inductor_config.patch(freezing=True):
            return self.compiled(x)

    def __deepcopy__(self, memo):
        return self

    def train(self, mode: bool = True) -> Deployed:
        """Only records the mode: the compiled graph is inference-only, and a reloaded
        torch.export program refuses train()/eval()."""
        self.training = mode
        return self


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def compile_frozen(model: nn.Module, dynamic: bool = False) -> Deployed:
    """torch.compile `model` for inference with freezing on (weights folded into the graph).

    Each new input shape compiles once (seconds) at its first call; dynamic=False specialises
    every shape, the fastest kernels for a fixed batch size. `model` itself is not changed.
    Without freezing an int8 model is no faster than fp32 (the quantised weights are not prepacked
    for oneDNN). Introduced in notebook 06.
    """
    try:
        model.eval()
    except NotImplementedError:  # a reloaded torch.export program: already an inference graph
        pass
    return Deployed(model, dynamic=dynamic)


class Autocast(nn.Module):
    """Runs `model` under autocast in `dtype` (bf16 by default) and returns fp32 logits.

    Matrix multiplications and convolutions run in bf16, the rest in fp32; on a CPU with
    AVX512-BF16 or AMX that roughly halves the memory traffic of the weights. Introduced in notebook 06.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.model(x).float()


@contextlib.contextmanager
def _quiet():
    """Silence what a failing torch.export prints (the partial graph, on stderr and torch's logs):
    the ValueError below says what matters."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _leaf_inputs(model: nn.Module, example: torch.Tensor) -> dict[str, tuple]:
    """The positional inputs every submodule receives on `example` (one eager forward, hooks)."""
    inputs: dict[str, tuple] = {}
    def keep(name: str):
        def hook(module, args, output) -> None:
            inputs.setdefault(name, args)
        return hook

    handles = [module.register_forward_hook(keep(name)) for name, module in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return inputs


def find_unexportable(model: nn.Module, example: torch.Tensor) -> str | None:
    """The name and type of the deepest submodule torch.export cannot trace, or None.

    Each submodule is exported alone on the input it receives in an eager pass, children before
    their parents, so the first failure is the layer to blame. Used to name the layer in
    quantize_int8's error.
    """
    try:
        inputs = _leaf_inputs(model, example)
    except Exception as err:  # the eager pass itself fails: the model is broken before export
        return f"the model's eager forward ({type(err).__name__}: {err})"
    modules = dict(model.named_modules())
    for name in sorted(inputs, key=lambda n: -n.count(".")):  # deepest first
        module = modules[name]
        try:
            with _quiet():
                torch.export.export(module, inputs[name], strict=True)
        except Exception:
            return f"{name} ({type(module).__name__})"
    return None


def quantize_int8(model: nn.Module, calibration: Iterable, example_shape: tuple[int, ...],
                  calibration_batches: int = 2, max_batch: int = 4096) -> nn.Module:
    """An int8 copy of `model` by PT2E static quantisation, ready for compile_frozen.

    Steps: torch.export (strict=True: torchvision's ResNets otherwise fail in prepare_pt2e with
    "Input partition has more than one output node"), with the batch dimension dynamic up to
    `max_batch`; prepare_pt2e with X86InductorQuantizer's default config (int8 activations per
    tensor, int8 weights per output channel, BatchNorm folded into the convolutions); forward passes
    on `calibration_batches` batches of `calibration` (a loader of (inputs, targets) or of inputs)
    so the observers see real activations; convert_pt2e. `example_shape` is one input's (C, H, W):
    other image sizes need their own quantised model.

    `model` is never changed (a copy is exported). A model that cannot be exported or quantised
    raises ValueError naming the submodule to blame. Introduced in notebook 06.
    """
    from torchao.quantization.pt2e import allow_exported_model_train_eval, move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    float_model = copy.deepcopy(model).cpu().eval()
    example = torch.randn(2, *example_shape)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    try:
        with _quiet():
            exported = torch.export.export(float_model, (example,), dynamic_shapes=({0: batch},), strict=True)
    except Exception as err:
        culprit = find_unexportable(float_model, example) or "no single submodule (the model's own forward)"
        raise ValueError(f"{type(model).__name__} cannot be exported for int8 quantisation; the layer to blame is "
                         f"{culprit}. torch.export said: {type(err).__name__}: {_first_line(err)}") from err
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    try:
        prepared = prepare_pt2e(exported.module(), quantizer)
        seen = 0
        with torch.no_grad():
            for item in calibration:
                if seen >= calibration_batches:
                    break
                inputs = item[0] if isinstance(item, (tuple, list)) else item
                prepared(inputs.cpu())
                seen += 1
        if seen == 0:
            raise ValueError("the calibration loader gave no batches")
        quantized = convert_pt2e(prepared)
    except Exception as err:
        raise ValueError(f"quantising {type(model).__name__} to int8 failed after export "
                         f"({type(err).__name__}: {_first_line(err)})") from err
    move_exported_model_to_eval(quantized)
    allow_exported_model_train_eval(quantized)  # so .eval() (as measure and train call it) works
    return quantized


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"


# ---------------------------------------------------------------------------------------------
# Accuracy at a fixed batch size


@torch.no_grad()
def correct_fixed_batch(model: nn.Module, loader: Iterable, batch_size: int) -> torch.Tensor:
    """Which images `model` classifies correctly, (N,) bool in loader order, feeding it only
    batches of exactly `batch_size` (a short last batch is padded with zeros and the padding dropped).

    A compiled model specialised to a batch size would recompile (seconds) for the odd last batch;
    in eval mode every image is computed alone, so padding changes nothing.
    """
    outcomes = []
    for inputs, targets in loader:
        if len(inputs) > batch_size:
            raise ValueError(f"the loader's batches ({len(inputs)}) are larger than batch_size {batch_size}")
        padded = torch.cat([inputs, inputs.new_zeros(batch_size - len(inputs), *inputs.shape[1:])])
        logits = model(padded)[: len(inputs)]
        outcomes.append(logits.argmax(dim=1).cpu() == targets)
    return torch.cat(outcomes)


# ---------------------------------------------------------------------------------------------
# What is deployed: one table of variants, one recipe

MODELS: dict[str, str] = {"dense": "teacher", "gmp90": "gmp", "resnet18_kd": "student", "structured": "structured"}
"""The float models deployed, by their name in notebook 06 -> their hand-over key (`handover.REGISTRY`)."""


class Variant(NamedTuple):
    """One deployable form of a float model: its compression route, the model (a key of MODELS) and how it runs."""

    route: str     # "dense", "unstructured", "KD" or "structured"
    model: str
    runs_as: str   # "eager fp32", "fp32 + compile", "bf16 + compile" or "int8 + compile"


VARIANTS: dict[str, Variant] = {  # the names notebook 06 records its figures under
    "dense_fp32": Variant("dense", "dense", "eager fp32"),
    "gmp90_sparse_fp32": Variant("unstructured", "gmp90", "eager fp32"),
    "gmp90_sparse_fp32_compiled": Variant("unstructured", "gmp90", "fp32 + compile"),
    "gmp90_sparse_bf16_compiled": Variant("unstructured", "gmp90", "bf16 + compile"),
    "gmp90_sparse_int8": Variant("unstructured", "gmp90", "int8 + compile"),
    "resnet18_kd_fp32": Variant("KD", "resnet18_kd", "eager fp32"),
    "resnet18_kd_int8": Variant("KD", "resnet18_kd", "int8 + compile"),
    "structured_fp32": Variant("structured", "structured", "eager fp32"),
    "structured_int8": Variant("structured", "structured", "int8 + compile"),
}


def warm_up(model: nn.Module, input_shape: Sequence[int], batch_sizes: Sequence[int]) -> nn.Module:
    """Run `model` once on zeros at each batch size, so a compiled model compiles now and not inside a
    timing. Returns `model`."""
    with torch.no_grad():
        for batch_size in batch_sizes:
            model(torch.zeros(batch_size, *input_shape))
    return model


def build_variant(name: str, floats: Mapping[str, nn.Module], calibration: Iterable,
                  input_shape: tuple[int, ...], batch_sizes: Sequence[int],
                  calibration_batches: int = 2) -> nn.Module:
    """Variant `name` of VARIANTS made from its float model in `floats` (keyed as MODELS), ready to time.

    Eager fp32 is the float model itself; the compiled variants are compile_frozen on a copy (bf16 through
    Autocast) and int8 is quantize_int8 (calibrated on `calibration_batches` batches of `calibration`),
    then compile_frozen; compiled variants are warmed up at every batch size in `batch_sizes`. The int8
    model itself is the result's `.model`.
    """
    if name not in VARIANTS:
        raise ValueError(f"no deployable variant {name!r}; choose from {sorted(VARIANTS)}")
    variant = VARIANTS[name]
    if variant.model not in floats:
        raise ValueError(f"variant {name!r} is made from float model {variant.model!r}, which floats lacks "
                         f"(it holds {sorted(floats)}); load it as handover key {MODELS[variant.model]!r}")
    model = floats[variant.model]
    if variant.runs_as == "eager fp32":
        return model
    if variant.runs_as == "int8 + compile":
        deployable = quantize_int8(model, calibration, input_shape, calibration_batches)
    elif variant.runs_as == "bf16 + compile":
        deployable = Autocast(copy.deepcopy(model))
    else:
        deployable = copy.deepcopy(model)
    return warm_up(compile_frozen(deployable), input_shape, batch_sizes)


# ---------------------------------------------------------------------------------------------
# Reading notebook 06: what to deploy


class Choice(NamedTuple):
    """What `what_to_deploy` read from notebook 06's table."""

    reading: str             # the sentences, one a line
    chosen: pd.Series        # the table's row of the variant to deploy (Going further 3 exports it)
    qualifying: pd.DataFrame  # the variants within max_drop of their control; none qualifying: the chosen one's row


def what_to_deploy(table: pd.DataFrame, sizes: pd.DataFrame, controls: Mapping[str, tuple], timings: Mapping, *,
                   max_drop: float, batch: int, rounds: int) -> Choice:
    """Notebook 06's choice, generated from its tables so the sentences cannot disagree with them.

    A compressed variant qualifies when its test accuracy is within `max_drop` points of its route's control
    (`table.within_control`). Among those: the smallest stored form (`sizes`: variant, form, bytes; its first row the
    dense fp32 file) against the 16x target, the fastest at `batch` against the 12x target (median of `rounds`
    interleaved rounds, `timings` as measure.interleaved_timings gives them) and the fastest at batch 1. The chosen
    variant is the fastest at `batch`; when none qualifies, the one closest to its control. `controls` maps each
    route to (label, test accuracy as a fraction, ...). `table` holds notebook 06's columns (variant, route,
    test_accuracy and control_accuracy as fractions, within_control, speedup_b1, speedup_b<batch>); the sentences
    print accuracies in percent.
    """
    dense_bytes = int(sizes.bytes.iloc[0])
    compressed = table[table.route != "dense"]
    ok = compressed[compressed.within_control.astype(bool)]
    ok_sizes = sizes[sizes.variant.isin(ok.variant)]
    lines = [f"{route}: {int(group.within_control.astype(bool).sum())} of {len(group)} variants within {max_drop:g} "
             f"point(s) of {controls[route][0]} ({controls[route][1]:.2%})."
             for route, group in compressed.groupby("route", sort=False)]
    if not len(ok):
        chosen = compressed.loc[(compressed.test_accuracy - compressed.control_accuracy).idxmax()]
        lines.append(f"None is within {max_drop:g} point(s) of its control, so the size and speed targets cannot be "
                     f"claimed; the variant closest to its control, {chosen.variant} ({chosen.test_accuracy:.2%} "
                     f"against {chosen.control_accuracy:.2%}), is the one Going further 3 exports.")
        return Choice("\n".join(lines), chosen, compressed[compressed.variant == chosen.variant])
    small_form = ok_sizes.loc[ok_sizes.bytes.idxmin()]
    fast = ok.loc[ok[f"speedup_b{batch}"].idxmax()]
    fast1 = ok.loc[ok.speedup_b1.idxmax()]
    lines += [
        f"Smallest on disk: {small_form.variant} as '{small_form.form}', {small_form.bytes / 1e6:.2f} MB, "
        f"{report.beside(dense_bytes / small_form.bytes, 16)}x smaller than the dense fp32 file (target 16x: "
        f"{'met' if dense_bytes / small_form.bytes >= 16 else 'not met'}).",
        f"Fastest at batch {batch}: {fast.variant}, against eager fp32 dense "
        f"{measure.speedup_words(timings, fast.variant, 'dense_fp32', batch)} (target 12x, on the median of "
        f"{rounds} rounds, {report.beside(fast[f'speedup_b{batch}'], 12)}x: "
        f"{'met' if fast[f'speedup_b{batch}'] >= 12 else 'not met'}), at "
        f"{fast.test_accuracy:.2%} test accuracy against {fast.control_accuracy:.2%} for {fast.control}.",
        f"Fastest at batch 1: {fast1.variant}, {measure.speedup_words(timings, fast1.variant, 'dense_fp32', 1)}.",
    ]
    if small_form.variant != fast.variant:
        lines.append(f"No single model wins both: {small_form.variant} to store or ship over a slow link, "
                     f"{fast.variant} to serve; Going further 3 exports {fast.variant}.")
    else:
        lines.append(f"{fast.variant} is both the smallest and the fastest: deploy it.")
    return Choice("\n".join(lines), fast, ok)
