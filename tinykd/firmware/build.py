"""Build and flash a rendered project with arduino-cli, PlatformIO or ESP-IDF.

Whichever tool the board profile names and is installed does the work; its output is
streamed as it comes and its memory-usage lines ("Sketch uses …", "Global variables use
…", PlatformIO's "RAM:"/"Flash:", ESP-IDF's binary size) are parsed into the report. A
missing tool, board core or library is one error naming the command that installs it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.firmware.render import SKETCH_NAME, RenderedProject
from tinykd.firmware.tools import ARDUINO_CLI, IDF_PY, PLATFORMIO, Tool
from tinykd.io import write_text_atomic

Echo = Callable[[str], None]
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class MemoryUsage:
    """Bytes used and available as the build tool reported them (None: not reported)."""

    flash_used: int | None = None
    flash_max: int | None = None
    ram_used: int | None = None
    ram_max: int | None = None

    def lines(self) -> list[str]:
        found = []
        for what, used, maximum in (
            ("flash", self.flash_used, self.flash_max),
            ("RAM (static)", self.ram_used, self.ram_max),
        ):
            if used is not None:
                share = f" of {maximum:,} ({used / maximum:.0%})" if maximum else ""
                found.append(f"{what}: {used:,} bytes{share}")
        return found


@dataclass(frozen=True)
class BuildReport:
    tool: str
    memory: MemoryUsage
    log: Path


def _number(text: str) -> int:
    return int(text.replace(",", "").replace(".", ""))


_ARDUINO_FLASH = re.compile(r"Sketch uses ([\d,.]+) bytes .*?Maximum is ([\d,.]+) bytes")
_ARDUINO_RAM = re.compile(r"Global variables use ([\d,.]+) bytes .*?Maximum is ([\d,.]+) bytes")
_PIO = re.compile(r"^(RAM|Flash):\s*\[.*\]\s*[\d.]+% \(used (\d+) bytes from (\d+) bytes\)")
_IDF = re.compile(
    r"binary size (0x[0-9a-fA-F]+) bytes\. Smallest app partition is (0x[0-9a-fA-F]+) bytes"
)


def parse_memory_usage(lines: Sequence[str]) -> MemoryUsage:
    """Memory figures from arduino-cli, PlatformIO or idf.py build output."""
    values: dict[str, int] = {}
    for line in lines:
        if match := _ARDUINO_FLASH.search(line):
            values["flash_used"], values["flash_max"] = _number(match[1]), _number(match[2])
        elif match := _ARDUINO_RAM.search(line):
            values["ram_used"], values["ram_max"] = _number(match[1]), _number(match[2])
        elif match := _PIO.search(line.strip()):
            prefix = "flash" if match[1] == "Flash" else "ram"
            values[f"{prefix}_used"], values[f"{prefix}_max"] = int(match[2]), int(match[3])
        elif match := _IDF.search(line):
            values["flash_used"], values["flash_max"] = int(match[1], 16), int(match[2], 16)
    return MemoryUsage(**values)


def run_streamed(
    command: list[str], *, log: Path, echo: Echo, what: str, cwd: Path | None = None
) -> list[str]:
    """Run ``command``, echo each output line as it arrives, keep a log; fail loudly."""
    echo("$ " + " ".join(command))
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
    except OSError as error:
        raise TinyKDError(f"Could not start {command[0]}: {error.strerror}.") from None
    with process:
        for line in process.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            echo(line)
    write_text_atomic(log, "\n".join(lines) + "\n")
    if process.returncode != 0:
        tail = "\n".join(lines[-LOG_TAIL_LINES:])
        raise TinyKDError(
            f"{what} failed (exit status {process.returncode}):\n{tail}\nFull log: {log}"
        )
    return lines


def _json_command(tool: str, arguments: list[str]) -> object:
    result = subprocess.run([tool, *arguments, "--format", "json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise TinyKDError(f"`arduino-cli {' '.join(arguments)}` failed: {result.stderr.strip()}")
    try:
        return json.loads(result.stdout or "null")
    except ValueError:
        raise TinyKDError(f"`arduino-cli {' '.join(arguments)}` printed no JSON.") from None


def _installed_cores(tool: str) -> set[str]:
    data = _json_command(tool, ["core", "list"])
    platforms = data.get("platforms", []) if isinstance(data, dict) else (data or [])
    return {platform.get("id", "") for platform in platforms}


def _installed_libraries(tool: str) -> set[str]:
    data = _json_command(tool, ["lib", "list"])
    entries = data.get("installed_libraries", []) if isinstance(data, dict) else (data or [])
    return {entry.get("library", {}).get("name", "") for entry in entries}


def check_arduino_setup(tool: str, board: Board) -> None:
    """The board's core and TFLM library must be installed; say how if not."""
    target = board.arduino
    assert target is not None
    if target.core not in _installed_cores(tool):
        note = f" ({target.core_note})" if target.core_note else ""
        raise TinyKDError(
            f"The Arduino core {target.core} for {board.title} is not installed. Install it: "
            f"arduino-cli core install {target.core}{note}"
        )
    missing = [name for name in target.libraries if name not in _installed_libraries(tool)]
    if missing:
        commands = " && ".join(f'arduino-cli lib install "{name}"' for name in missing)
        raise TinyKDError(
            f"Arduino library {', '.join(missing)} is not installed. Install it: {commands}"
        )


def build_candidates(board: Board, kind: str) -> list[Tool]:
    if kind == "arduino":
        return [
            tool
            for tool, ok in ((ARDUINO_CLI, board.arduino), (PLATFORMIO, board.platformio))
            if ok
        ]
    if kind == "esp-idf":
        return [IDF_PY]
    return []


def choose_tool(board: Board, kind: str, requested: str | None = None) -> tuple[Tool, str]:
    """The build tool to use and its path: the requested one, else the first installed."""
    candidates = build_candidates(board, kind)
    if not candidates:
        raise TinyKDError(f"A {kind!r} project is not built with an external tool.")
    if requested:
        chosen = [
            tool for tool in candidates if tool.name == requested or requested in tool.executables
        ]
        if not chosen:
            names = ", ".join(tool.name for tool in candidates)
            raise TinyKDError(f"{board.name} ({kind}) is built with {names}, not {requested!r}.")
        return chosen[0], chosen[0].require(f"build firmware for {board.name}")
    for tool in candidates:
        path = tool.find()
        if path:
            return tool, path
    options = "; ".join(f"{tool.name}: {tool.install}" for tool in candidates)
    names = " or ".join(tool.name for tool in candidates)
    raise TinyKDError(
        f"Building firmware for {board.name} needs {names}, and none is installed. Install one — {options}"
    )


def build_project(
    project: RenderedProject, board: Board, *, tool: str | None = None, echo: Echo = print
) -> BuildReport:
    """Compile the project; returns the tool used and the memory it reported."""
    chosen, path = choose_tool(board, project.kind, tool)
    root, log = project.root, project.root / "build.log"
    if chosen is ARDUINO_CLI:
        check_arduino_setup(path, board)
        command = [
            path,
            "compile",
            "--fqbn",
            board.arduino.fqbn,
            "--build-path",
            str(root / "build"),
        ]
        command.append(str(root / SKETCH_NAME))
    elif chosen is PLATFORMIO:
        command = [path, "run", "--project-dir", str(root), "--environment", board.name]
    else:
        set_target = [path, "-C", str(root), "set-target", board.esp_idf.target]
        run_streamed(set_target, log=root / "set-target.log", echo=echo, what="idf.py set-target")
        command = [path, "-C", str(root), "build"]
    lines = run_streamed(command, log=log, echo=echo, what=f"{chosen.name} build")
    return BuildReport(tool=chosen.name, memory=parse_memory_usage(lines), log=log)


def flash_project(
    project: RenderedProject,
    board: Board,
    port: str,
    *,
    tool: str | None = None,
    echo: Echo = print,
) -> None:
    """Upload the built project to the board on ``port``."""
    chosen, path = choose_tool(board, project.kind, tool)
    root = project.root
    if chosen is ARDUINO_CLI:
        command = [path, "upload", "--fqbn", board.arduino.fqbn, "--port", port]
        command += ["--input-dir", str(root / "build"), str(root / SKETCH_NAME)]
    elif chosen is PLATFORMIO:
        command = [path, "run", "--project-dir", str(root), "--environment", board.name]
        command += ["--target", "upload", "--upload-port", port]
    else:
        command = [path, "-C", str(root), "-p", port, "flash"]
    run_streamed(command, log=root / "flash.log", echo=echo, what=f"{chosen.name} upload")


def find_ports(board: Board) -> list[str]:
    """Serial devices whose USB VID:PID is one of the board profile's (one matcher for all)."""
    from tinykd.firmware.discovery import attached_boards

    return [
        found.port
        for found in attached_boards()
        if board.name in {candidate.name for candidate in found.candidates}
    ]


def resolve_port(board: Board, port: str) -> str:
    """``port`` itself, or for ``auto`` the one connected board of this kind."""
    if port != "auto":
        return port
    if not board.usb_ids:
        raise TinyKDError(f"{board.title} has no USB ids in its profile: pass --port <device>.")
    found = find_ports(board)
    if not found:
        raise TinyKDError(
            f"No {board.title} found on USB (looked for {', '.join(board.usb_ids)}). "
            "Connect it, or pass --port <device>."
        )
    if len(found) > 1:
        raise TinyKDError(
            f"Several {board.title} boards are connected ({', '.join(found)}): pass --port."
        )
    return found[0]
