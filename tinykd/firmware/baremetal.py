"""Build firmware images for bare-metal boards (no Arduino core, no RTOS), such as mps2_an386.

A bare-metal board is data (``boards/<name>.toml``: CPU flags, HAL folder, linker script)
plus its HAL folder. The HAL's C files (startup, UART, clock) go into every image; its C++
files are the TFLM port (e.g. TFLM's clock) and go in only when TFLM is linked.
tinykd's own C is compiled with ``-Wall -Wextra -Werror``; third-party code is not.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tinykd.errors import TinyKDError
from tinykd.firmware.cross import CrossToolchain, SectionSizes

REPO_ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO_ROOT / "boards"
STRICT_WARNINGS = ("-Wall", "-Wextra", "-Werror")
OPTIMIZATION = "-O2"


@dataclass(frozen=True)
class BareMetalBoard:
    """The build facts of one bare-metal board profile."""

    name: str
    cpu_flags: tuple[str, ...]
    hal_dir: Path
    linker_script: Path
    baud: int
    qemu_machine: str | None = None

    @classmethod
    def from_profile(cls, profile: dict, root: Path = REPO_ROOT) -> BareMetalBoard:
        build = profile.get("build", {})
        if build.get("toolchain") != "arm-none-eabi":
            raise TinyKDError(
                f"Board {profile.get('name')!r} is not a bare-metal arm-none-eabi board."
            )
        return cls(
            name=profile["name"],
            cpu_flags=tuple(build["cpu_flags"]),
            hal_dir=root / build["hal"],
            linker_script=root / build["linker_script"],
            baud=int(profile.get("baud", 115200)),
            qemu_machine=profile.get("emulator", {}).get("qemu_machine"),
        )

    @classmethod
    def load(cls, name: str) -> BareMetalBoard:
        path = BOARDS_DIR / f"{name}.toml"
        if not path.is_file():
            raise TinyKDError(f"No board profile {path}.")
        with path.open("rb") as file:
            return cls.from_profile(tomllib.load(file))

    def toolchain(self) -> CrossToolchain:
        return CrossToolchain(cpu_flags=self.cpu_flags)

    def hal_sources(self, *, tflm: bool) -> list[Path]:
        sources = sorted(self.hal_dir.glob("*.c"))
        if tflm:
            sources += sorted(self.hal_dir.glob("*.cc"))
        return sources


@dataclass(frozen=True)
class FirmwareImage:
    """A linked image and what it occupies."""

    elf: Path
    sizes: SectionSizes
    symbols: dict[str, int] = field(repr=False)


def build_image(
    board: BareMetalBoard,
    sources: Sequence[Path],
    out_dir: Path,
    *,
    include_dirs: Sequence[Path] = (),
    flags: Sequence[str] = (),
    libraries: Sequence[Path] = (),
    name: str = "firmware",
) -> FirmwareImage:
    """Compile ``sources`` (strict warnings) with the board's flags and link ``<name>.elf``."""
    toolchain = board.toolchain()
    common = [OPTIMIZATION, f"-I{board.hal_dir}", *(f"-I{path}" for path in include_dirs), *flags]
    objects = toolchain.compile_objects(
        sources, out_dir / f"{name}-obj", lambda _source: common, warnings=STRICT_WARNINGS
    )
    elf = toolchain.link(
        objects,
        linker_script=board.linker_script,
        output=out_dir / f"{name}.elf",
        libraries=libraries,
    )
    return FirmwareImage(
        elf=elf, sizes=toolchain.section_sizes(elf), symbols=toolchain.symbol_sizes(elf)
    )
