"""``precision="auto"``: bf16 mixed precision and channels-last convolutions where the CPU computes bf16 natively.

On a CPU with bf16 instructions (``avx512_bf16`` or Intel AMX) oneDNN runs convolutions and matrix products in
bfloat16 about 1.5-2x faster than in float32, and the NHWC ("channels-last") layout is the one its convolution
kernels prefer. bf16 keeps float32's exponent range, so no loss scaling is needed, but it rounds to 8 bits of
mantissa; Lightning's ``"bf16-mixed"`` autocasts the forward pass only (weights, optimiser state and the
loss stay float32; Micikevicius et al., "Mixed precision training", ICLR 2018). The gain is in convolutions: a
model of small linear layers on table features gains little and loses mantissa, so ``"auto"`` turns bf16 on
only for a model with a 2-D convolution, and only where the CPU has the instructions; everywhere else it
resolves to ``"32-true"`` and says why. The benchmark records the accuracy of both precisions over seeds.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from torch import nn

AUTO = "auto"


@functools.cache
def cpu_supports_bf16() -> bool:
    """True when ``/proc/cpuinfo`` lists native bf16 arithmetic (``avx512_bf16`` or ``amx_bf16``)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to tell, so never assume
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", text) is not None


def has_conv2d(model: nn.Module) -> bool:
    """Whether ``model`` holds a 2-D convolution (the layers bf16 and channels-last speed up)."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def resolve_precision(precision: str, model: nn.Module, accelerator: str = "cpu") -> tuple[str, str]:
    """The Lightning precision to train ``model`` with, and a one-line note of how it was chosen.

    Anything but ``"auto"`` is returned as given. ``"auto"`` on CPU gives ``"bf16-mixed"`` for a model with a 2-D
    convolution on a CPU with native bf16, else ``"32-true"``; on another accelerator ``"32-true"`` (choose its
    mixed precision explicitly).
    """
    if precision != AUTO:
        return precision, f"precision {precision} (as configured)"
    if accelerator not in ("cpu", "auto"):
        return "32-true", f"precision auto -> 32-true: bf16 is only chosen automatically on CPU, not {accelerator!r}"
    if not has_conv2d(model):
        return "32-true", "precision auto -> 32-true: the model has no convolution, where bf16 would pay"
    if not cpu_supports_bf16():
        return "32-true", "precision auto -> 32-true: this CPU lists no avx512_bf16/amx_bf16 instructions"
    return "bf16-mixed", "precision auto -> bf16-mixed + channels-last: convolutions on a CPU with native bf16"
