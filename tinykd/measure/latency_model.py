"""The latency model: work per operator of a .tflite, times a board's cycles per MAC.

Convolutions and fully connected layers dominate int8 inference on a microcontroller, so
their multiply-accumulates are counted exactly from the tensor shapes in the flatbuffer:

- CONV_2D: H_out·W_out·C_out·k_h·k_w·C_in
- DEPTHWISE_CONV_2D: H_out·W_out·C_out·k_h·k_w
- FULLY_CONNECTED: (output elements)·(input depth)

Every other operator counts one unit of work per output element (pooling, adds,
softmax, …); reshapes count nothing. A board profile gives cycles per unit of work per
operator (``[cycles_per_mac]`` in ``boards/*.toml``) and ``Board.estimate_cycles``
multiplies them out: an *estimate*, and every report that shows it says so.
"""

from __future__ import annotations

import numpy as np

from tinykd.errors import TinyKDError

FREE_OPERATORS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE", "DEQUANTIZE"}


def operator_work(tflite: bytes) -> dict[str, int]:
    """Lower-case operator name → MACs (or output elements) summed over the graph."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        model = runtime.convert_bytearray_to_object(bytearray(tflite))
    except Exception:
        raise TinyKDError("Not a TFLite model (the flatbuffer could not be parsed).") from None
    names = {
        v: k for k, v in vars(runtime.schema_fb.BuiltinOperator).items() if not k.startswith("_")
    }
    subgraph = model.subgraphs[0]

    def shape(index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in np.asarray(subgraph.tensors[index].shape))

    work: dict[str, int] = {}
    for operator in subgraph.operators:
        code = runtime.get_builtin_code_from_operator_code(
            model.operatorCodes[operator.opcodeIndex]
        )
        name = names.get(code, f"BUILTIN_{code}")
        output_elements = int(np.prod(shape(operator.outputs[0])))
        if name == "CONV_2D":
            _, kernel_h, kernel_w, in_channels = shape(operator.inputs[1])
            amount = output_elements * kernel_h * kernel_w * in_channels
        elif name == "DEPTHWISE_CONV_2D":
            _, kernel_h, kernel_w, _ = shape(operator.inputs[1])
            amount = output_elements * kernel_h * kernel_w
        elif name == "FULLY_CONNECTED":
            amount = output_elements * shape(operator.inputs[1])[-1]
        elif name in FREE_OPERATORS:
            amount = 0
        else:
            amount = output_elements
        work[name.lower()] = work.get(name.lower(), 0) + amount
    return work
