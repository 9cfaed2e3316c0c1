"""Build a rendered ``host`` project into a host program: the whole firmware, TFLM included.

The emulated board's everyday engine is the TFLM *Python* interpreter behind the host
library (``host_core``). This module compiles the C++ side instead: the same
``tkd_runtime_tflm.cc`` a board runs, linked against a tflite-micro source tree (one made
by tflite-micro's ``create_tflm_tree.py``; tinykd never downloads it), with a stdin/stdout
HAL. It proves the TFLM seam compiles and computes what the Python interpreter computes.

Only the TFLM framework and the kernels the generated op resolver registers are compiled;
objects are cached per source file, so a second build takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinykd.errors import TinyKDError
from tinykd.firmware.host_core import c_compiler
from tinykd.firmware.render import RenderedProject
from tinykd.firmware.tflm_library import find_tflm_tree, kernel_sources, registered_kernels
from tinykd.firmware.tools import CXX_COMPILER
from tinykd.io import cache_dir

CXX_STANDARD = "-std=c++17"
COMMON_FLAGS = ("-O1", "-DTF_LITE_STATIC_MEMORY", "-fno-exceptions", "-fno-rtti")
OWN_WARNINGS = ("-Wall", "-Wextra", "-Werror")
# Framework sources that only tests use.
SKIPPED = {
    "test_helpers.cc",
    "test_helper_custom_ops.cc",
    "mock_micro_graph.cc",
    "fake_micro_context.cc",
}


def include_flags(tree: Path) -> list[str]:
    third_party = tree / "third_party"
    return [
        f"-isystem{tree}",
        f"-isystem{third_party / 'flatbuffers/include'}",
        f"-isystem{third_party / 'gemmlowp'}",
        f"-isystem{third_party / 'ruy'}",
    ]


def framework_sources(tree: Path) -> list[Path]:
    sources = []
    for path in sorted((tree / "tensorflow").rglob("*.cc")):
        relative = path.relative_to(tree).as_posix()
        if "/micro/kernels/" in relative or "cortex_m" in relative or path.name in SKIPPED:
            continue
        sources.append(path)
    return sources


def _compile(compiler: str, source: Path, flags: list[str], target: Path) -> Path:
    handle, temporary = tempfile.mkstemp(suffix=".o", dir=target.parent)
    os.close(handle)
    try:
        _run([compiler, *flags, "-c", str(source), "-o", temporary], f"Compiling {source}")
    except TinyKDError:
        os.unlink(temporary)
        raise
    os.replace(temporary, target)
    return target


def _compile_cached(compiler: str, source: Path, flags: list[str], object_dir: Path) -> Path:
    """TFLM objects, cached by compiler, flags and source text (the tree's headers are fixed)."""
    digest = hashlib.sha256(" ".join([compiler, *flags]).encode() + source.read_bytes())
    target = object_dir / f"{source.stem}-{digest.hexdigest()[:16]}.o"
    return target if target.is_file() else _compile(compiler, source, flags, target)


def build_host_firmware(project: RenderedProject, tree: str | Path | None = None) -> Path:
    """Compile the host project's sources and the TFLM it needs; returns the executable."""
    if project.kind != "host":
        raise TinyKDError(f"{project.root} is a {project.kind!r} project, not a host one.")
    tree = find_tflm_tree(tree).root  # the argument, else TFLM_DIR, as for every build
    cc, cxx = c_compiler(), CXX_COMPILER.require("build the host firmware")
    includes = include_flags(tree)
    tflm_flags = [CXX_STANDARD, *COMMON_FLAGS, "-w", *includes]
    source_dir = project.source_dir
    own_c = [
        CXX_STANDARD.replace("c++17", "c11"),
        "-O1",
        *OWN_WARNINGS,
        "-pedantic",
        f"-I{source_dir}",
    ]
    own_cxx = [CXX_STANDARD, *COMMON_FLAGS, *OWN_WARNINGS, f"-I{source_dir}", *includes]

    tflm_sources = framework_sources(tree) + kernel_sources(
        registered_kernels(project.operators, tree), tree
    )
    object_dir = cache_dir("tflm-host-objects")
    build_dir = project.root / "build"
    build_dir.mkdir(exist_ok=True)
    jobs = [(_compile_cached, cxx, source, tflm_flags, object_dir) for source in tflm_sources]
    for source in sorted(source_dir.glob("*.c*")):  # the project's own sources: always rebuilt
        compiler, flags = (cc, own_c) if source.suffix == ".c" else (cxx, own_cxx)
        jobs.append((_compile, compiler, source, flags, build_dir / f"{source.name}.o"))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(lambda job: job[0](*job[1:]), jobs))
    # TFLM goes into an archive so that the linker takes only the objects it needs.
    archive = build_dir / "libtflm.a"
    archive.unlink(missing_ok=True)
    tflm_objects = [str(o) for o in objects[: len(tflm_sources)]]
    _run([shutil.which("ar") or "ar", "rcs", str(archive), *tflm_objects], "Archiving TFLM")
    executable = build_dir / "tinykd_fw"
    own_objects = [str(o) for o in objects[len(tflm_sources) :]]
    _run([cxx, *own_objects, str(archive), "-o", str(executable)], "Linking the host firmware")
    return executable


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise TinyKDError(f"{what} failed:\n{result.stderr.strip()}")
