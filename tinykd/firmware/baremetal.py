"""Build firmware images for boards that run bare metal in QEMU (``[qemu]`` in the profile).

An image is the board-neutral core (``firmware/core``), the board's HAL folder
(``firmware/hal/<hal>``: startup, UART, clock, linker script), a runtime behind the
inference seam and the generated model files. The HAL's C files go into every image; its
C++ files are the TFLM port (e.g. TFLM's clock) and go in only when TFLM is linked.
tinykd's own C and C++ are compiled with ``-Wall -Wextra -Werror``; TFLM is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tinykd.boards import Board, QemuTarget
from tinykd.errors import TinyKDError
from tinykd.export.artifact import Int8Artifact, load_model_folder
from tinykd.export.model_folder import write_model_folder
from tinykd.firmware.cross import CrossToolchain
from tinykd.firmware.elf_sizes import BuildSizes, elf_sizes
from tinykd.firmware.paths import firmware_dir
from tinykd.firmware.render import board_config_header
from tinykd.firmware.tflm_library import TflmTree, build_tflm_library, find_tflm_tree
from tinykd.io import cache_dir, write_text_atomic

STRICT_WARNINGS = ("-Wall", "-Wextra", "-Werror")
OPTIMIZATION = "-O2"
MODEL_ARRAY = "g_model_data"


def qemu_target(board: Board) -> QemuTarget:
    if board.device != "qemu":
        raise TinyKDError(
            f"Board {board.name!r} does not run in QEMU (its profile has no [qemu] table)."
        )
    return board.qemu


def hal_dir(board: Board) -> Path:
    return firmware_dir() / "hal" / qemu_target(board).hal


def toolchain(board: Board) -> CrossToolchain:
    return CrossToolchain(cpu_flags=qemu_target(board).cpu_flags)


def hal_sources(board: Board, *, tflm: bool) -> list[Path]:
    folder = hal_dir(board)
    return sorted(folder.glob("*.c")) + (sorted(folder.glob("*.cc")) if tflm else [])


@dataclass(frozen=True)
class FirmwareImage:
    """A linked image and what it occupies."""

    elf: Path
    sizes: BuildSizes
    symbols: dict[str, int] = field(repr=False)

    @property
    def model_bytes(self) -> int:
        """The model array's share of flash (0 when the image has no model)."""
        return self.symbols.get(MODEL_ARRAY, 0)


def build_image(
    board: Board,
    sources: Sequence[Path],
    out_dir: Path,
    *,
    include_dirs: Sequence[Path] = (),
    flags: Sequence[str] = (),
    libraries: Sequence[Path] = (),
    name: str = "firmware",
) -> FirmwareImage:
    """Compile ``sources`` (strict warnings) with the board's flags and link ``<name>.elf``."""
    tools = toolchain(board)
    includes = [hal_dir(board), *include_dirs]
    common = [OPTIMIZATION, *(f"-I{path}" for path in includes), *flags]
    objects = tools.compile_objects(
        sources, out_dir / f"{name}-obj", lambda _source: common, warnings=STRICT_WARNINGS
    )
    elf = tools.link(
        objects,
        linker_script=hal_dir(board) / qemu_target(board).linker_script,
        output=out_dir / f"{name}.elf",
        libraries=libraries,
    )
    return FirmwareImage(elf=elf, sizes=elf_sizes(elf), symbols=tools.symbol_sizes(elf))


def build_benchmark_firmware(
    board: Board,
    model_dir: Path,
    out_dir: Path,
    *,
    tflm: TflmTree | None,
    runtime_sources: Sequence[Path] = (),
    name: str = "firmware",
) -> FirmwareImage:
    """The benchmark firmware: core + HAL + runtime + the model files in ``model_dir``.

    With ``tflm`` the runtime is TFLM (``firmware/runtime/tflm``) over the exported model
    (a model folder: ``model_data.cc``, ``op_resolver.h``, ``model_settings.h`` and the
    artifact whose operators select the TFLM kernels); without it,
    ``runtime_sources`` implement ``tkd_runtime.h`` (a protocol test runtime) and only
    ``model_settings.h`` is needed.
    """
    firmware = firmware_dir()
    if not (Path(model_dir) / "model_settings.h").is_file():
        raise TinyKDError(f"{model_dir} has no model_settings.h: export the model first.")
    config_dir = out_dir / f"{name}-config"
    write_text_atomic(config_dir / "tkd_config.h", board_config_header(board, "qemu"))
    sources = [firmware / "core/tkd_core.c", *hal_sources(board, tflm=tflm is not None)]
    flags: list[str] = []
    libraries: list[Path] = []
    if tflm is not None:
        if not (Path(model_dir) / "model_data.cc").is_file():
            raise TinyKDError(f"{model_dir} has no model_data.cc: export the model first.")
        sources += [*sorted((firmware / "runtime/tflm").glob("*.cc")), model_dir / "model_data.cc"]
        flags = tflm.application_flags(system_headers=True)
        operators = load_model_folder(model_dir).operators
        libraries = [build_tflm_library(tflm, toolchain(board), operators=operators)]
    else:
        sources += list(runtime_sources)
    return build_image(
        board,
        sources,
        out_dir,
        include_dirs=[config_dir, Path(model_dir), firmware / "core"],
        flags=flags,
        libraries=libraries,
        name=name,
    )


def build_model_firmware(
    board: Board, artifact: Int8Artifact, *, tflm_dir: str | Path | None = None
) -> tuple[FirmwareImage, TflmTree]:
    """The benchmark firmware of ``board`` for one artifact (cached by model and TFLM tree)."""
    tflm = find_tflm_tree(tflm_dir)
    out_dir = cache_dir("qemu-firmware", f"{board.name}-{tflm.kernels}-{artifact.hash}")
    model_dir = write_model_folder(artifact, out_dir / "model")
    return build_benchmark_firmware(board, model_dir, out_dir, tflm=tflm), tflm
