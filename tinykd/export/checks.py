"""Can TFLM run this int8 model? Checked from the .tflite alone, before any firmware is built.

Three things stop a model on a board: an operator TFLM has no kernel for, a float tensor
left in what should be an int8 graph (an operator the converter could not quantize runs
in float, between DEQUANTIZE and QUANTIZE, slowly and often without a float kernel in
the firmware), and float input or output (the firmware feeds and reads int8). All
problems are reported in one message, each by name.
"""

from __future__ import annotations

from tinykd.errors import TinyKDError
from tinykd.export.tflite_model import TfliteInfo, describe_tflite
from tinykd.export.tflm_ops import RESOLVER_METHODS

SHOWN_TENSORS = 5


def deployment_problems(info: TfliteInfo) -> list[str]:
    """One line per problem; empty when the model can run on a board as exported."""
    problems = []
    missing = [op for op in info.operators if op not in RESOLVER_METHODS]
    if missing:
        problems.append(
            f"TFLM has no kernel for operator(s) {', '.join(missing)}: replace the layers that "
            "produce them (e.g. ReLU instead of GELU, standard layers instead of custom ops)"
        )
    for role, tensor in (("input", info.input), ("output", info.output)):
        if tensor.dtype != "int8":
            problems.append(
                f"the {role} tensor {tensor.name!r} is {tensor.dtype}, not int8: export with "
                "full-integer int8 quantization"
            )
    if info.float_tensors:
        shown = ", ".join(info.float_tensors[:SHOWN_TENSORS])
        more = len(info.float_tensors) - SHOWN_TENSORS
        converters = ("QUANTIZE", "DEQUANTIZE")
        culprits = [op for op in info.float_operators if op not in converters]
        operators = ", ".join(culprits or info.float_operators) or "none"
        problems.append(
            f"{len(info.float_tensors)} float tensor(s) left in the int8 model ({shown}"
            f"{f' and {more} more' if more > 0 else ''}), used by operator(s) {operators}: "
            "those layers have no int8 kernel; replace them or quantize them"
        )
    return problems


def require_deployable(info: TfliteInfo) -> TfliteInfo:
    """``info`` when TFLM can run the model on a board; otherwise a ``TinyKDError`` naming why."""
    problems = deployment_problems(info)
    if problems:
        raise TinyKDError(
            "This model cannot run on a board as exported:\n  - " + "\n  - ".join(problems)
        )
    return info


def check_deployable(tflite: bytes) -> TfliteInfo:
    """The model's description when TFLM can run it; otherwise a ``TinyKDError`` naming why."""
    return require_deployable(describe_tflite(tflite))
