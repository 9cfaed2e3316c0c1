"""clang's libFuzzer over the firmware core's protocol parser, with AddressSanitizer and UBSan.

``fuzz/libfuzzer_core.c`` feeds coverage-guided inputs to the real ``tkd_core.c`` (through
the host library). The corpus starts from the commands of the protocol transcripts and the
dictionary ``fuzz/core.dict``; a fixed number of runs (``TINYKD_LIBFUZZER_RUNS``, default
100,000) with a fixed seed keeps it reproducible and under a minute on two cores.
Needs ``clang`` with its runtime libraries (Debian ``clang`` and ``libclang-rt-dev``,
installed by ``scripts/setup.sh``): skipped with the reason when they are missing, except
under ``CI=true`` or ``TINYKD_TEST_FUZZ=1``, where a missing toolchain fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fw_helpers import (
    TRANSCRIPTS,
    core_with_planted_overflow,
    fuzz_compiler,
    parse,
    skip_or_fail_fuzz,
)

from tinykd.firmware.paths import firmware_dir

HERE = Path(__file__).parent
FUZZ_FLAGS = ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]
FLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *FUZZ_FLAGS]
RUNS = int(os.environ.get("TINYKD_LIBFUZZER_RUNS", "100000"))
SECONDS_LIMIT = 45  # a safety net for a loaded machine; the run count is the real bound


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Compiles the libFuzzer driver against a given tkd_core.c; returns that function."""
    work = tmp_path_factory.mktemp("libfuzzer")
    clang = shutil.which("clang")
    reason = "clang is not installed (Debian: apt-get install clang libclang-rt-dev)"
    if clang is not None:
        probe = work / "probe.c"
        probe.write_text(
            "#include <stddef.h>\n#include <stdint.h>\n"
            "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n"
        )
        result = subprocess.run(
            [clang, *FUZZ_FLAGS, str(probe), "-o", str(work / "probe")],
            capture_output=True,
            text=True,
        )
        reason = f"clang cannot link libFuzzer with sanitizers: {result.stderr.strip()[-300:]}"
        clang = clang if result.returncode == 0 else None
    if clang is None:
        skip_or_fail_fuzz(reason)
    flags = [*FLAGS, f"-I{HERE / 'fuzz'}"]
    return fuzz_compiler(work, clang, flags, HERE / "fuzz" / "libfuzzer_core.c"), work


def _seed_corpus(folder: Path) -> Path:
    """One seed per protocol transcript: the bytes it sends, delivered in 16-byte chunks."""
    folder.mkdir(exist_ok=True)
    for path in sorted(TRANSCRIPTS.glob("*.txt")):
        sent = b"".join(step.send for step in parse(path).steps if step.send)
        (folder / path.stem).write_bytes(bytes([15]) + sent)
    return folder


def _fuzz(executable: Path, corpus: Path, runs: int) -> subprocess.CompletedProcess:
    command = [
        str(executable),
        f"-runs={runs}",
        "-seed=1",
        "-max_len=4096",
        "-timeout=10",
        f"-max_total_time={SECONDS_LIMIT}",
        f"-dict={HERE / 'fuzz' / 'core.dict'}",
        f"-artifact_prefix={corpus.parent}/",
        str(corpus),
    ]
    environment = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=SECONDS_LIMIT + 60, env=environment
    )


def test_libfuzzer_finds_nothing_in_the_command_parser(build):
    compile_with, work = build
    executable = compile_with(firmware_dir() / "core" / "tkd_core.c", "libfuzzer_core")
    result = _fuzz(executable, _seed_corpus(work / "corpus"), RUNS)
    assert result.returncode == 0, result.stderr[-4000:]
    done = [line for line in result.stderr.splitlines() if "DONE" in line or "Done" in line]
    assert done, result.stderr[-2000:]
    coverage = int(result.stderr.split("cov: ")[-1].split()[0])
    assert coverage > 100, result.stderr[-2000:]  # it really explored the parser


def test_libfuzzer_finds_a_planted_overflow(build):
    """The same fuzzer against a core whose command-length check is off by eight must crash."""
    compile_with, work = build
    broken = core_with_planted_overflow(work)
    result = _fuzz(compile_with(broken, "libfuzzer_broken"), _seed_corpus(work / "seeds"), RUNS)
    assert result.returncode != 0
    assert "AddressSanitizer" in result.stderr or "out of bounds" in result.stderr
