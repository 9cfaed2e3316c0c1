"""The firmware core as a host shared library, driven from Python.

``firmware/core/tkd_core.c`` (the protocol code every board runs) is compiled with the
system C compiler together with ``firmware/hal/host/tkd_host_lib.c``, whose HAL moves
bytes through memory and whose inference seam calls back into Python. With a
``TflmHostRuntime`` behind the seam this is the emulated board: the real firmware
protocol in front of the TFLM interpreter (``tinykd.measure.devices.emulator``).

    core = HostCore("build/model_settings.h", TflmHostRuntime(artifact, arena_size))
    boot = core.boot()                # b"m-timestamp-mode-performance\\r\\n...m-ready\\r\\n"
    reply = core.feed(b"name%")       # b"m-name-dut-[tinykd]\\r\\nm-ready\\r\\n"

``feed`` hands the bytes to the core as a UART would, lets it act on every complete
command and returns everything it wrote meanwhile (nothing is lost or reordered).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from tinykd.errors import TinyKDError
from tinykd.firmware.paths import firmware_dir
from tinykd.firmware.render import config_header
from tinykd.firmware.tools import C_COMPILER
from tinykd.io import cache_dir

HOST_SOURCES = ("core/tkd_core.c", "hal/host/tkd_host_lib.c")
C_FLAGS = ("-std=c11", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-pedantic")

_INIT = ctypes.CFUNCTYPE(ctypes.c_int)
_INVOKE = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_uint8),
    ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_int8),
    ctypes.c_size_t,
)
_TICKS = ctypes.CFUNCTYPE(ctypes.c_uint32)

INVOKE_INTERRUPTED = 2  # the invoke status the core reports when a run was interrupted


class InvokeInterrupted(Exception):
    """Raised by a runtime's ``invoke`` to end a long ``infer`` early (reset or shutdown).

    The core answers ``e-[Invoke failed with code 2]`` and returns to its command loop, so
    a board asked for a million inferences still obeys a reset or SIGTERM at once.
    """


def c_compiler() -> str:
    return C_COMPILER.require("build the host firmware")


def build_host_library(
    model_settings: str | Path, *, board_name: str = "emulated", cmd_size: int | None = None
) -> Path:
    """Compile the core for the host (cached by the hash of every input); returns the .so."""
    settings = Path(model_settings).read_text(encoding="utf-8")
    extra = {"TKD_CMD_SIZE": f"{int(cmd_size)}u"} if cmd_size else {}
    config = config_header(
        board_name=board_name, baud=115200, cpu_hz=1_000_000, cycle_counter="host", extra=extra
    )
    sources = firmware_dir()
    compiler = c_compiler()
    digest = hashlib.sha256()
    for part in (compiler, *C_FLAGS, settings, config):
        digest.update(part.encode() + b"\0")
    for relative in (*HOST_SOURCES, "core/tkd_core.h", "core/tkd_hal.h", "core/tkd_runtime.h"):
        digest.update((sources / relative).read_bytes() + b"\0")
    target = cache_dir("host-core", digest.hexdigest()[:24]) / "libtkd_host.so"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        Path(work, "model_settings.h").write_text(settings, encoding="utf-8")
        Path(work, "tkd_config.h").write_text(config, encoding="utf-8")
        output = Path(work, "libtkd_host.so")
        command = [compiler, *C_FLAGS, f"-I{work}", f"-I{sources / 'core'}"]
        command += [str(sources / relative) for relative in HOST_SOURCES] + ["-o", str(output)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise TinyKDError(f"Building the host firmware core failed:\n{result.stderr.strip()}")
        os.replace(output, target)
    return target


class HostRuntime(Protocol):
    """What sits behind the firmware's inference seam on the host."""

    arena_used: int | None  # read after init(), reported by tkd-info

    def init(self) -> int:
        """0 when the model is ready (a tkd_runtime_init() code otherwise)."""

    def invoke(self, input_bytes: bytes) -> Sequence[int]:
        """One inference on the raw input tensor bytes → the int8 output values."""


class ManualClock:
    """A tick counter that moves only when told to: deterministic m-lap-us in tests."""

    def __init__(self, ticks_per_second: int = 1_000_000, unit: str = "us", start: int = 0):
        self.ticks_per_second, self.unit, self.now = ticks_per_second, unit, start

    def advance(self, ticks: int) -> None:
        self.now += ticks

    def ticks(self) -> int:
        return self.now & 0xFFFFFFFF


class HostCore:
    """One instance of the firmware core, fed and read like a serial port."""

    def __init__(
        self,
        model_settings: str | Path,
        runtime: HostRuntime,
        *,
        clock: ManualClock | None = None,
        board_name: str = "emulated",
        cmd_size: int | None = None,
    ):
        library = build_host_library(model_settings, board_name=board_name, cmd_size=cmd_size)
        # A private copy per instance: the core's state is static, dlopen shares it per path.
        with tempfile.NamedTemporaryFile(suffix=".so", delete=False) as copy:
            copy.write(library.read_bytes())
        try:
            self._lib = ctypes.CDLL(copy.name)
        finally:
            os.unlink(copy.name)
        self._lib.tkd_host_feed.restype = ctypes.c_size_t
        self._lib.tkd_host_feed.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self._lib.tkd_host_take_output.restype = ctypes.c_size_t
        self._lib.tkd_host_take_output.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self._lib.tkd_host_pending_input.restype = ctypes.c_size_t
        self._lib.tkd_host_input_bytes.restype = ctypes.c_size_t
        self._lib.tkd_host_num_classes.restype = ctypes.c_size_t
        self._lib.tkd_host_model_hash.restype = ctypes.c_char_p
        self.runtime, self.clock = runtime, clock
        self.input_bytes = int(self._lib.tkd_host_input_bytes())
        self.num_classes = int(self._lib.tkd_host_num_classes())
        self.model_hash = self._lib.tkd_host_model_hash().decode()
        self._error: BaseException | None = None
        self._booted = False
        # Keep the callbacks referenced for as long as the library may call them.
        self._callbacks = (_INIT(self._init), _INVOKE(self._invoke), _TICKS(self._ticks))
        self._lib.tkd_host_configure(
            self._callbacks[0],
            self._callbacks[1],
            self._callbacks[2] if clock else ctypes.cast(None, _TICKS),
            ctypes.c_uint32(clock.ticks_per_second if clock else 0),
            (clock.unit if clock else "us").encode(),
            ctypes.c_size_t(0),
        )
        self._buffer = ctypes.create_string_buffer(1 << 16)

    # ---- callbacks from C: never let an exception cross into C ----
    def _init(self) -> int:
        try:
            status = int(self.runtime.init())
            self._lib.tkd_host_set_arena_used(ctypes.c_size_t(int(self.runtime.arena_used or 0)))
            return status
        except BaseException as error:  # noqa: BLE001 - re-raised after the C call returns
            self._error = error
            return 99

    def _invoke(self, input_pointer, input_length, output_pointer, output_length) -> int:
        try:
            values = np.asarray(self.runtime.invoke(ctypes.string_at(input_pointer, input_length)))
            if values.size != output_length:
                raise TinyKDError(
                    f"runtime returned {values.size} outputs, the firmware expects {output_length}"
                )
            ctypes.memmove(output_pointer, values.astype(np.int8).tobytes(), output_length)
            return 0
        except InvokeInterrupted:
            return INVOKE_INTERRUPTED
        except BaseException as error:  # noqa: BLE001
            self._error = error
            return 1

    def _ticks(self) -> int:
        return self.clock.ticks()

    # ---- serial-port side ----
    def boot(self) -> bytes:
        """Run ``tkd_core_setup()`` (as at power-on); returns what the board prints."""
        self._lib.tkd_core_setup()
        self._booted = True
        return self._take_output()

    def feed(self, data: bytes = b"") -> bytes:
        """Deliver ``data`` to the core, let it act, return what it wrote meanwhile.

        ``feed(b"")`` just polls (e.g. after advancing a ``ManualClock`` past a timeout).
        The core stops reading while its output queue is nearly full; the loop takes the
        output and polls again until every byte was read, so no amount of input that
        triggers long replies (100 KB of ``help%``) overflows it.
        """
        if not self._booted:
            raise RuntimeError("HostCore.boot() must be called before feed()")
        output = bytearray()
        view = memoryview(bytes(data))
        while True:
            accepted = self._lib.tkd_host_feed(bytes(view[: 1 << 16]), len(view[: 1 << 16]))
            self._lib.tkd_core_poll()
            output += self._take_output()
            view = view[accepted:]
            if not view and not self._lib.tkd_host_pending_input():
                return bytes(output)

    def _take_output(self) -> bytes:
        output = bytearray()
        while count := self._lib.tkd_host_take_output(self._buffer, len(self._buffer)):
            output += self._buffer.raw[:count]
        if self._lib.tkd_host_output_overflowed():
            raise RuntimeError("host firmware output buffer overflowed")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return bytes(output)
