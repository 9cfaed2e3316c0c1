"""Board profiles: the data that makes one firmware core fit many boards.

Each board is a TOML file in the repository's ``boards/`` folder (``TINYKD_BOARDS_DIR``
overrides it). Loading checks every field (type, range, known names) so a typo fails at
load time with the file and the key named, not halfway through a build.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from tinykd.errors import TinyKDError
from tinykd.registry import Registry

BOARDS_DIR = Path(__file__).resolve().parents[1] / "boards"

# How each cycle-counter kind ticks; the firmware's HAL reports the same unit.
TICK_UNITS = {
    "dwt": "cycles",  # Cortex-M3/M4/M7 DWT->CYCCNT
    "micros": "us",  # a microsecond timer (Cortex-M0+ has no DWT cycle counter)
    "ccount": "cycles",  # Xtensa CCOUNT register (ESP32, ESP32-S3)
    "icount": "instructions",  # QEMU -icount: one tick per executed instruction
    "host": "us",  # the host's monotonic clock (emulated board)
}
# How tinykd reaches a board (``device`` in its profile; ``tinykd.measure.devices``):
DEVICE_KINDS = {
    "serial": "a board on a serial port: flashed, then benchmarked through the port",
    "host": "the emulated board: the firmware core compiled for this computer, the TFLM "
    "interpreter behind it, latency estimated from the profile",
    "qemu": "the firmware built for the board's CPU and run in QEMU (instructions counted)",
}
DWT_CPUS = {"cortex-m3", "cortex-m4", "cortex-m4f", "cortex-m7"}
_USB_ID = re.compile(r"^[0-9A-F]{4}:[0-9A-F]{4}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ArduinoTarget:
    """How arduino-cli builds the sketch: board, core to install, TFLM library."""

    fqbn: str
    core: str
    libraries: tuple[str, ...]
    tflm_header: str
    core_note: str = ""  # e.g. a board-manager URL the core needs first


@dataclass(frozen=True)
class PlatformIOTarget:
    """The ``[env:…]`` that PlatformIO builds the same sketch with."""

    platform: str
    board: str
    framework: str
    lib_deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class EspIdfTarget:
    """An ESP-IDF project (``idf.py``) using the esp-tflite-micro component."""

    target: str
    component: str
    component_version: str
    serial: str = "uart0"  # or "usb_serial_jtag" on boards with only native USB


@dataclass(frozen=True)
class QemuTarget:
    """A bare-metal image for a QEMU machine: arm-none-eabi-gcc flags and the HAL folder."""

    machine: str  # qemu-system-arm -M <machine>
    cpu_flags: tuple[str, ...]
    hal: str  # firmware/hal/<hal>
    linker_script: str  # file in the HAL folder


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    cpu: str
    cpu_hz: int
    sram_bytes: int
    flash_bytes: int
    reserved_sram_bytes: int  # framework, stacks, TFLM runtime state, the core's buffers
    reserved_flash_bytes: int  # bootloader, framework, TFLM kernels, the core
    baud: int
    usb_ids: tuple[str, ...]  # "VID:PID", upper-case hex
    device: str  # one of DEVICE_KINDS: how tinykd runs and reaches the board
    cycle_counter: str
    cycles_per_mac: Mapping[str, float]  # TFLite op name (lower case) or "default"
    arduino: ArduinoTarget | None = None
    platformio: PlatformIOTarget | None = None
    esp_idf: EspIdfTarget | None = None
    qemu: QemuTarget | None = None
    notes: str = ""
    source: Path | None = field(default=None, compare=False)

    @property
    def tick_unit(self) -> str:
        return TICK_UNITS[self.cycle_counter]

    @property
    def usable_sram_bytes(self) -> int:
        return self.sram_bytes - self.reserved_sram_bytes

    @property
    def usable_flash_bytes(self) -> int:
        return self.flash_bytes - self.reserved_flash_bytes

    def project_kinds(self) -> list[str]:
        """Firmware project kinds this board can be rendered as, preferred first."""
        kinds = []
        if self.arduino or self.platformio:
            kinds.append("arduino")
        if self.esp_idf:
            kinds.append("esp-idf")
        if self.device == "host":
            kinds.append("host")
        if self.device == "qemu":
            kinds.append("qemu")
        return kinds

    def estimate_cycles(self, macs_by_op: Mapping[str, int]) -> float:
        """Latency model: Σ MACs × cycles-per-MAC of the op (``default`` for others)."""
        default = self.cycles_per_mac["default"]
        return float(
            sum(
                macs * self.cycles_per_mac.get(op.lower(), default)
                for op, macs in macs_by_op.items()
            )
        )

    def estimate_seconds(self, macs_by_op: Mapping[str, int]) -> float:
        return self.estimate_cycles(macs_by_op) / self.cpu_hz


# ---- validation ---------------------------------------------------------------------

_REQUIRED = object()


class _Table:
    """One TOML table being read: typed lookups, then a check that nothing is left over."""

    def __init__(self, data: dict, where: str):
        if not isinstance(data, dict):
            raise TinyKDError(f"{where} must be a table.")
        self.data, self.where, self.used = data, where, set()

    def get(self, key: str, kind: type, default=_REQUIRED):
        self.used.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise TinyKDError(f"{self.where}: missing required key {key!r}.")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise TinyKDError(
                f"{self.where}: {key!r} must be {kind.__name__}, not {type(value).__name__} ({value!r})."
            )
        return value

    def positive(self, key: str, default=_REQUIRED) -> int:
        value = self.get(key, int, default)
        if value is not None and value <= 0:
            raise TinyKDError(f"{self.where}: {key!r} must be > 0, not {value}.")
        return value

    def strings(self, key: str, default=_REQUIRED) -> tuple[str, ...]:
        values = self.get(key, list, default)
        if not all(isinstance(v, str) and v for v in values):
            raise TinyKDError(f"{self.where}: {key!r} must be a list of non-empty strings.")
        return tuple(values)

    def choice(self, key: str, choices, default=_REQUIRED) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise TinyKDError(
                f"{self.where}: {key!r} is {value!r}; expected one of {', '.join(sorted(choices))}."
            )
        return value

    def section(self, key: str) -> _Table | None:
        self.used.add(key)
        return _Table(self.data[key], f"{self.where} [{key}]") if key in self.data else None

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                close = difflib.get_close_matches(key, sorted(self.used), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise TinyKDError(f"{self.where}: unknown key {key!r}.{hint}")


def _arduino(table: _Table | None) -> ArduinoTarget | None:
    if table is None:
        return None
    target = ArduinoTarget(
        fqbn=table.get("fqbn", str),
        core=table.get("core", str),
        libraries=table.strings("libraries"),
        tflm_header=table.get("tflm_header", str),
        core_note=table.get("core_note", str, ""),
    )
    if target.fqbn.count(":") < 2 or not target.fqbn.startswith(target.core + ":"):
        raise TinyKDError(f"{table.where}: fqbn {target.fqbn!r} must be '{target.core}:<board>'.")
    table.finish()
    return target


def _platformio(table: _Table | None) -> PlatformIOTarget | None:
    if table is None:
        return None
    target = PlatformIOTarget(
        platform=table.get("platform", str),
        board=table.get("board", str),
        framework=table.choice("framework", {"arduino"}),
        lib_deps=table.strings("lib_deps", ()),
    )
    table.finish()
    return target


def _esp_idf(table: _Table | None) -> EspIdfTarget | None:
    if table is None:
        return None
    target = EspIdfTarget(
        target=table.choice("target", {"esp32", "esp32s3"}),
        component=table.get("component", str, "espressif/esp-tflite-micro"),
        component_version=table.get("component_version", str, "^1.3.0"),
        serial=table.choice("serial", {"uart0", "usb_serial_jtag"}, "uart0"),
    )
    table.finish()
    return target


def _qemu(table: _Table | None) -> QemuTarget | None:
    if table is None:
        return None
    target = QemuTarget(
        machine=table.get("machine", str),
        cpu_flags=table.strings("cpu_flags"),
        hal=table.get("hal", str),
        linker_script=table.get("linker_script", str),
    )
    table.finish()
    return target


def _cycles_per_mac(table: _Table | None) -> Mapping[str, float]:
    if table is None:
        raise TinyKDError("missing [cycles_per_mac] table (the latency model needs it).")
    values = {key: table.get(key, float) for key in table.data}
    if "default" not in values:
        raise TinyKDError(f"{table.where}: needs a 'default' entry.")
    for key, value in values.items():
        if value <= 0:
            raise TinyKDError(f"{table.where}: {key!r} must be > 0, not {value}.")
    return MappingProxyType(values)


def parse_board(data: dict, name: str, source: Path | None = None) -> Board:
    """A validated ``Board`` from the TOML table of ``boards/<name>.toml``."""
    where = str(source or name)
    table = _Table(data, where)
    if not _NAME.match(name):
        raise TinyKDError(f"{where}: board name {name!r} must be lower case letters, digits and _.")
    try:
        board = Board(
            name=name,
            title=table.get("title", str),
            cpu=table.get("cpu", str),
            cpu_hz=table.positive("cpu_hz"),
            sram_bytes=table.positive("sram_bytes"),
            flash_bytes=table.positive("flash_bytes"),
            reserved_sram_bytes=table.get("reserved_sram_bytes", int),
            reserved_flash_bytes=table.get("reserved_flash_bytes", int),
            baud=table.positive("baud"),
            usb_ids=table.strings("usb_ids", ()),
            device=table.choice("device", DEVICE_KINDS),
            cycle_counter=table.choice("cycle_counter", TICK_UNITS),
            notes=table.get("notes", str, ""),
            cycles_per_mac=_cycles_per_mac(table.section("cycles_per_mac")),
            arduino=_arduino(table.section("arduino")),
            platformio=_platformio(table.section("platformio")),
            esp_idf=_esp_idf(table.section("esp_idf")),
            qemu=_qemu(table.section("qemu")),
            source=source,
        )
    except TinyKDError as error:
        message = str(error)
        raise TinyKDError(message if message.startswith(where) else f"{where}: {message}") from None
    table.finish()
    _check_consistency(board, where)
    return board


def _check_consistency(board: Board, where: str) -> None:
    if not 0 <= board.reserved_sram_bytes < board.sram_bytes:
        raise TinyKDError(f"{where}: reserved_sram_bytes must be in [0, sram_bytes).")
    if not 0 <= board.reserved_flash_bytes < board.flash_bytes:
        raise TinyKDError(f"{where}: reserved_flash_bytes must be in [0, flash_bytes).")
    for usb_id in board.usb_ids:
        if not _USB_ID.match(usb_id):
            raise TinyKDError(
                f"{where}: USB id {usb_id!r} must look like '2341:805A' (upper-case hex)."
            )
    if board.cycle_counter == "dwt" and board.cpu not in DWT_CPUS:
        raise TinyKDError(
            f"{where}: cycle_counter 'dwt' needs a Cortex-M3/M4/M7 CPU, not {board.cpu!r} "
            "(use 'micros' on Cortex-M0+)."
        )
    if board.cycle_counter == "ccount" and not board.cpu.startswith("xtensa"):
        raise TinyKDError(
            f"{where}: cycle_counter 'ccount' needs an Xtensa CPU, not {board.cpu!r}."
        )
    if (board.cycle_counter == "icount") != (board.qemu is not None):
        raise TinyKDError(
            f"{where}: cycle_counter 'icount' (instructions under QEMU) and a [qemu] table go "
            "together."
        )
    if (board.device == "qemu") != (board.qemu is not None):
        raise TinyKDError(f"{where}: device 'qemu' and a [qemu] table go together.")
    if (board.device == "host") != (board.cycle_counter == "host"):
        raise TinyKDError(
            f"{where}: device 'host' (the emulated board) and cycle_counter 'host' go together."
        )
    if not board.project_kinds():
        raise TinyKDError(
            f"{where}: no way to build firmware: add an [arduino], [platformio], [esp_idf] "
            "or [qemu] table."
        )
    if board.arduino is None and board.platformio is not None:
        raise TinyKDError(f"{where}: [platformio] builds the Arduino sketch: add [arduino] too.")


def load_board_file(path: str | Path) -> Board:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TinyKDError(f"Cannot read board profile {path}: {error.strerror}.") from None
    except tomllib.TOMLDecodeError as error:
        raise TinyKDError(f"{path}: not valid TOML ({error}).") from None
    return parse_board(data, path.stem, path)


def boards_dir() -> Path:
    return Path(os.environ.get("TINYKD_BOARDS_DIR") or BOARDS_DIR)


_registries: dict[Path, Registry[Board]] = {}


def board_registry() -> Registry[Board]:
    """All profiles in the boards folder, loaded (and validated) once."""
    folder = boards_dir()
    if folder not in _registries:
        if not folder.is_dir():
            raise TinyKDError(f"Board profiles folder {folder} not found (set TINYKD_BOARDS_DIR).")
        registry: Registry[Board] = Registry("board")
        for path in sorted(folder.glob("*.toml")):
            registry.register(path.stem)(load_board_file(path))
        _registries[folder] = registry
    return _registries[folder]


def load_board(name: str) -> Board:
    """The board called ``name`` ("did you mean …" on a typo)."""
    return board_registry().get(name)


def list_boards() -> list[str]:
    return board_registry().names()
