"""Cross-compile bare-metal firmware with the GNU Arm toolchain (Debian: gcc-arm-none-eabi).

A few functions around ``arm-none-eabi-gcc``: compile many sources in parallel (TFLM has
hundreds), archive, link, and read symbol sizes (the model's share of flash; section sizes
come from ``tinykd.firmware.elf_sizes.elf_sizes``).
Board data (CPU flags, linker script) comes from the caller; nothing here is board-specific.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tinykd.errors import TinyKDError

# Debian packages that provide the compilers, newlib and the C++ headers TFLM needs.
DEBIAN_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
MAX_ERROR_LINES = 40

C_FLAGS = ("-std=gnu11",)
CXX_FLAGS = (
    "-std=c++17",
    "-fno-rtti",
    "-fno-exceptions",
    "-fno-threadsafe-statics",
    "-fno-use-cxa-atexit",
)
COMMON_FLAGS = ("-ffunction-sections", "-fdata-sections")


@dataclass(frozen=True)
class CrossToolchain:
    """``arm-none-eabi-*`` tools with one CPU's flags (e.g. Cortex-M4 with hard float)."""

    cpu_flags: tuple[str, ...]
    prefix: str = "arm-none-eabi-"

    def tool(self, name: str) -> str:
        path = shutil.which(self.prefix + name)
        if path is None:
            raise TinyKDError(
                f"{self.prefix}{name} is not installed; a QEMU board needs the GNU Arm "
                f"toolchain. On Debian/Ubuntu: apt-get install --no-install-recommends "
                f"{DEBIAN_PACKAGES}"
            )
        return path

    def check_cxx(self) -> None:
        """Fail early, with the package to install, when the C++ headers are missing."""
        probe = subprocess.run(
            [self.tool("g++"), *self.cpu_flags, "-x", "c++", "-E", "-", "-o", os.devnull],
            input="#include <new>\n#include <cstdint>\n",
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            raise TinyKDError(
                "The Arm C++ standard headers are missing (TFLM is C++). On Debian/Ubuntu: "
                "apt-get install --no-install-recommends libstdc++-arm-none-eabi-newlib"
            )

    def fingerprint(self) -> str:
        """Compiler version and every flag this class adds: part of every cache key."""
        version = subprocess.run(
            [self.tool("gcc"), "--version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
        return " ".join([version, *self.cpu_flags, *COMMON_FLAGS, *C_FLAGS, *CXX_FLAGS])

    def compile_command(
        self, source: Path, obj: Path, flags: Sequence[str], warnings: Sequence[str] = ()
    ) -> list[str]:
        cxx = source.suffix in (".cc", ".cpp")
        compiler = self.tool("g++" if cxx else "gcc")
        language = CXX_FLAGS if cxx else C_FLAGS
        return [
            compiler,
            *self.cpu_flags,
            *COMMON_FLAGS,
            *language,
            *warnings,
            *flags,
            "-c",
            str(source),
            "-o",
            str(obj),
        ]

    def compile_objects(
        self,
        sources: Sequence[Path],
        out_dir: Path,
        flags_for: Callable[[Path], Sequence[str]],
        *,
        warnings: Sequence[str] = (),
        reuse: bool = False,
        jobs: int | None = None,
    ) -> list[Path]:
        """Compile every source (in parallel) into ``out_dir``; one object per source.

        ``reuse``: keep an object already in ``out_dir`` (the caller makes ``out_dir``
        specific to the sources' contents and flags). Objects appear whole or not at all.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        commands = []
        objects = []
        for source in sources:
            digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:10]
            obj = out_dir / f"{source.stem}-{digest}.o"
            objects.append(obj)
            if not (reuse and obj.is_file()):
                commands.append(self.compile_command(source, obj, flags_for(source), warnings))
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            results = list(pool.map(_compile, commands))
        failures = [(cmd, out) for cmd, (code, out) in zip(commands, results, strict=True) if code]
        if failures:
            command, output = failures[0]
            raise TinyKDError(
                f"Compiling {command[-3]} failed ({len(failures)} file(s) failed in all):\n"
                + _first_lines(output)
            )
        return objects

    def archive(self, objects: Iterable[Path], library: Path) -> Path:
        library.unlink(missing_ok=True)
        _check(_run([self.tool("ar"), "rcs", str(library), *map(str, objects)]), "ar")
        return library

    def link(
        self,
        inputs: Sequence[Path],
        *,
        linker_script: Path,
        output: Path,
        libraries: Sequence[Path] = (),
    ) -> Path:
        """Link with newlib-nano; unused sections are dropped (the flash figure is honest)."""
        command = [
            self.tool("g++"),
            *self.cpu_flags,
            "-nostartfiles",
            "--specs=nano.specs",
            f"-T{linker_script}",
            "-Wl,--gc-sections",
            f"-Wl,-Map={output.with_suffix('.map')}",
            *map(str, inputs),
            "-Wl,--start-group",
            *map(str, libraries),
            "-lstdc++_nano",
            "-lsupc++_nano",
            "-lm",
            "-lc_nano",
            "-lgcc",
            "-Wl,--end-group",
            "-o",
            str(output),
        ]
        _check(_run(command), f"linking {output.name}")
        return output

    def symbol_sizes(self, elf: Path) -> dict[str, int]:
        """Defined symbols with a size, by (mangled) name."""
        code, out = _run([self.tool("nm"), "-S", str(elf)])
        _check((code, out), "nm")
        sizes = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 4:
                sizes[parts[3]] = int(parts[1], 16)
        return sizes


def _compile(command: list[str]) -> tuple[int, str]:
    """Run a compile command writing to a temporary object, renamed into place on success."""
    obj = Path(command[-1])
    temporary = obj.with_name(f".{obj.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    code, output = _run([*command[:-1], str(temporary)])
    if code == 0:
        os.replace(temporary, obj)
    else:
        temporary.unlink(missing_ok=True)
    return code, output


def _run(command: Sequence[str]) -> tuple[int, str]:
    done = subprocess.run(command, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def _first_lines(text: str) -> str:
    lines = text.strip().splitlines()
    more = len(lines) - MAX_ERROR_LINES
    return "\n".join(lines[:MAX_ERROR_LINES]) + (f"\n... ({more} more lines)" if more > 0 else "")


def _check(result: tuple[int, str], what: str) -> None:
    code, output = result
    if code:
        raise TinyKDError(f"{what} failed:\n{_first_lines(output)}")
