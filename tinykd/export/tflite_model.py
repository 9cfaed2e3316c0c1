"""What tinykd needs to know about a .tflite: operators, input/output tensors, float leftovers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tinykd.errors import TinyKDError

# TFLite TensorType enum values (schema.fbs).
TENSOR_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    9: "int8",
    7: "int16",
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class TfliteInfo:
    operators: tuple[str, ...]  # builtin operator names, in first-use order
    input: TensorInfo
    output: TensorInfo
    float_tensors: tuple[str, ...]  # float32 activations/weights left in the graph
    size_bytes: int
    float_operators: tuple[str, ...] = ()  # operators reading or writing a float tensor
    output_is_softmax: bool = False  # the output tensor is written by a SOFTMAX operator


def model_hash(tflite: bytes) -> str:
    """The model's identity: first 16 hex digits of its sha256 (the firmware reports it)."""
    return hashlib.sha256(tflite).hexdigest()[:16]


def _schema():
    from tflite_micro.python.tflite_micro import runtime

    return runtime


def _tensor_info(tensor) -> TensorInfo:
    quantization = tensor.quantization
    scale = (
        float(quantization.scale[0])
        if quantization is not None and quantization.scale is not None and len(quantization.scale)
        else 0.0
    )
    zero_point = (
        int(quantization.zeroPoint[0])
        if quantization is not None
        and quantization.zeroPoint is not None
        and len(quantization.zeroPoint)
        else 0
    )
    return TensorInfo(
        name=tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name),
        shape=tuple(int(d) for d in np.asarray(tensor.shape)),
        dtype=TENSOR_TYPES.get(int(tensor.type), f"type{int(tensor.type)}"),
        scale=scale,
        zero_point=zero_point,
    )


def describe_tflite(tflite: bytes) -> TfliteInfo:
    """Parse the flatbuffer; a file that is not a TFLite model is a clear error."""
    runtime = _schema()
    try:
        model = runtime.convert_bytearray_to_object(bytearray(tflite))
        subgraph = model.subgraphs[0]
    except Exception:
        raise TinyKDError("Not a TFLite model (the flatbuffer could not be parsed).") from None
    if len(model.subgraphs) != 1:
        raise TinyKDError(f"Models with {len(model.subgraphs)} subgraphs are not supported.")
    names = {
        v: k for k, v in vars(runtime.schema_fb.BuiltinOperator).items() if not k.startswith("_")
    }
    float_indices = {i for i, t in enumerate(subgraph.tensors) if int(t.type) in (0, 1)}
    used_codes, float_operators = [], []
    output_writer = None
    output_index = (
        int(subgraph.outputs[0]) if subgraph.outputs is not None and len(subgraph.outputs) else -1
    )
    for operator in subgraph.operators:
        code = runtime.get_builtin_code_from_operator_code(
            model.operatorCodes[operator.opcodeIndex]
        )
        name = names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            custom = model.operatorCodes[operator.opcodeIndex].customCode
            name = f"CUSTOM:{custom.decode() if isinstance(custom, bytes) else custom}"
        if name not in used_codes:
            used_codes.append(name)
        if operator.outputs is not None and output_index in {int(i) for i in operator.outputs}:
            output_writer = name
        ends = [
            index
            for part in (operator.inputs, operator.outputs)
            if part is not None
            for index in part
        ]
        touched = {int(i) for i in ends} & float_indices
        if touched and name not in float_operators:
            float_operators.append(name)
    if len(subgraph.inputs) != 1 or len(subgraph.outputs) != 1:
        raise TinyKDError(
            f"tinykd exports single-input, single-output models; this one has "
            f"{len(subgraph.inputs)} inputs and {len(subgraph.outputs)} outputs."
        )
    floats = tuple(_tensor_info(t).name for t in subgraph.tensors if int(t.type) in (0, 1))
    return TfliteInfo(
        operators=tuple(used_codes),
        input=_tensor_info(subgraph.tensors[subgraph.inputs[0]]),
        output=_tensor_info(subgraph.tensors[subgraph.outputs[0]]),
        float_tensors=floats,
        size_bytes=len(tflite),
        float_operators=tuple(float_operators),
        output_is_softmax=output_writer == "SOFTMAX",
    )
