"""Measurement: the int8 model in the TFLM interpreter (the on-device reference), and on devices.

From the bottom up: ``tflm``, ``latency_model`` and ``parity`` (references, no device);
``harness`` (the protocol on the host side, the runner, reports); ``devices`` (the boards
it opens: serial, emulated, QEMU); ``qemu_run`` and ``mlperf`` (runs that use both).
"""

from tinykd.measure.tflm import TflmModel, quantize_inputs

__all__ = ["TflmModel", "quantize_inputs"]
