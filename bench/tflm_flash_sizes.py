"""Flash taken by the TFLM runtime and by each operator's kernel, from a compiled TFLM library.

The fit check (tinykd/export/fit.py) estimates a firmware's flash as model bytes plus the
TFLM runtime plus the kernels of the operators the model uses. This script prints those
figures from a real cross-compiled library: text + data of each object file, before
linking (an upper bound: the linker's --gc-sections drops unused functions).

python bench/tflm_flash_sizes.py --tree $TFLM_DIR --library path/to/libtflm.a

The library is what ``tinykd.firmware.tflm_library`` builds from a generated TFLM tree
(cached under ~/.cache/tinykd/tflm/<kind>-<hash>/libtflm.a, reference kernels, Cortex-M4,
arm-none-eabi-gcc, -O2 kernels / -Os framework).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.export.tflm_flash import (  # noqa: E402
    KERNEL_OBJECTS,
    OBJECT_FLASH_BYTES,
    RUNTIME_FLASH_BYTES,
)
from tinykd.export.tflm_ops import RESOLVER_METHODS  # noqa: E402
from tinykd.io import cache_dir  # noqa: E402

KERNELS = Path("tensorflow/lite/micro/kernels")
# Objects of the runtime every model links: interpreter, allocator, planner, flatbuffer
# parsing, resolver, and the helpers all int8 kernels call.
RUNTIME_PARTS = ("tensorflow/lite/micro/", "tensorflow/lite/core/", "tensorflow/compiler/")
RUNTIME_HELPERS = {"kernel_util", "quantization_util", "common", "runtime_shape", "tensor_ctypes"}
NOT_LINKED = ("recording_", "debug_log", "system_setup", "hexdump", "micro_profiler")


def object_sizes(library: Path) -> dict[str, int]:
    """text + data of every object in the archive, by source stem (the hash suffix removed)."""
    output = subprocess.run(
        ["arm-none-eabi-size", str(library)], capture_output=True, text=True, check=True
    ).stdout
    sizes: dict[str, int] = {}
    for line in output.splitlines()[1:]:
        fields = line.split()
        stem = re.sub(r"-[0-9a-f]+\.o$", "", fields[5]).removesuffix(".o")
        sizes[stem] = sizes.get(stem, 0) + int(fields[0]) + int(fields[1])
    return sizes


def kernel_files(tree: Path) -> dict[str, str]:
    """Operator name → stem of the kernel file that defines its ``Register_<OP>()``."""
    found = {}
    for source in sorted((tree / KERNELS).glob("*.cc")):
        for op in re.findall(
            r"TFLMRegistration Register_([A-Z0-9_]+)\(\)\s*\{", source.read_text()
        ):
            found.setdefault(op, source.stem)
    return found


def runtime_stems(tree: Path, sizes: dict[str, int]) -> list[str]:
    stems = []
    for stem in sizes:
        if stem.startswith(NOT_LINKED):
            continue
        paths = [p.relative_to(tree).as_posix() for p in tree.glob(f"tensorflow/**/{stem}.cc")]
        in_runtime = any(
            p.startswith(RUNTIME_PARTS) and not p.startswith(KERNELS.as_posix()) for p in paths
        )
        if in_runtime or stem in RUNTIME_HELPERS:
            stems.append(stem)
    return sorted(stems)


def default_library() -> Path | None:
    cache = cache_dir("tflm")
    libraries = sorted(cache.glob("reference-*/libtflm.a"), key=lambda p: p.stat().st_mtime)
    return libraries[-1] if libraries else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=os.environ.get("TFLM_DIR"), help="generated TFLM tree")
    parser.add_argument("--library", default=default_library(), help="compiled libtflm.a")
    parser.add_argument("--python", action="store_true", help="also print fit.py's tables")
    args = parser.parse_args()
    if not args.tree or not args.library:
        parser.error("need --tree (or TFLM_DIR) and --library (or a cached reference build)")
    tree, library = Path(args.tree), Path(args.library)
    sizes = object_sizes(library)
    runtime = runtime_stems(tree, sizes)
    print(f"# TFLM flash by part ({library})\n")
    print(f"runtime: {sum(sizes[s] for s in runtime):,} bytes ({len(runtime)} objects)")
    print(f"  fit.py RUNTIME_FLASH_BYTES = {RUNTIME_FLASH_BYTES:,}\n")
    print("| operator | kernel objects | bytes | fit.py |")
    print("|---|---|---|---|")
    files = kernel_files(tree)
    objects = {}
    for op in sorted(RESOLVER_METHODS):
        stem = files.get(op)
        if stem is None or stem not in sizes:
            continue
        parts = [stem] + ([f"{stem}_common"] if f"{stem}_common" in sizes else [])
        objects[op] = parts
        total = sum(sizes[p] for p in parts)
        ours = sum(OBJECT_FLASH_BYTES.get(p, 0) for p in KERNEL_OBJECTS.get(op, ()))
        print(f"| {op} | {' + '.join(parts)} | {total:,} | {ours:,} |")
    if args.python:
        print("\nKERNEL_OBJECTS = {")
        for op, parts in objects.items():
            print(f"    {op!r}: {tuple(parts)!r},")
        print("}\nOBJECT_FLASH_BYTES = {")
        for stem in sorted({p for parts in objects.values() for p in parts}):
            print(f"    {stem!r}: {sizes[stem]},")
        print("}")


if __name__ == "__main__":
    main()
