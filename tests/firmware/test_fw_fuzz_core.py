"""The firmware's protocol parser under a long randomized test with AddressSanitizer and UBSan.

``fuzz/fuzz_core.c`` drives the real ``tkd_core.c`` (through the host library) with random
commands, bytes, bulk transfers, clock jumps and resets: the sanitizer-built randomized
form, for compilers without libFuzzer (``test_fw_libfuzzer.py`` is the coverage-guided
one). Skipped when the compiler cannot build or run sanitized programs; ``CI=true`` or
``TINYKD_TEST_FUZZ=1`` turns the skip into a failure.
``TINYKD_FUZZ_ITERATIONS`` (default 60000 actions per seed) makes it longer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fw_helpers import core_with_planted_overflow, fuzz_compiler, skip_or_fail_fuzz

from tinykd.firmware.host_core import c_compiler
from tinykd.firmware.paths import firmware_dir

HERE = Path(__file__).parent
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
FLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *SANITIZE]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Compiles the fuzz driver against a given tkd_core.c; returns the executable."""
    work = tmp_path_factory.mktemp("fuzz")
    try:
        compiler = c_compiler()
    except Exception as error:
        skip_or_fail_fuzz(str(error))
    probe = work / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    result = subprocess.run(
        [compiler, *SANITIZE, str(probe), "-o", str(work / "probe")], capture_output=True
    )
    if result.returncode != 0 or subprocess.run([str(work / "probe")]).returncode != 0:
        skip_or_fail_fuzz(f"{compiler} cannot build or run programs with AddressSanitizer")
    return fuzz_compiler(work, compiler, FLAGS, HERE / "fuzz" / "fuzz_core.c"), work


def _run(executable: Path, iterations: int, seed: int) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1"}
    return subprocess.run(
        [str(executable), str(iterations), str(seed)],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
    )


def test_parser_survives_a_long_randomized_run_under_sanitizers(build):
    compile_with, _ = build
    executable = compile_with(firmware_dir() / "core" / "tkd_core.c", "fuzz_core")
    iterations = int(os.environ.get("TINYKD_FUZZ_ITERATIONS", "60000"))
    for seed in (1, 2):
        result = _run(executable, iterations, seed)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "~~~FUZZ PASSED~~~" in result.stdout
        bytes_in = int(result.stdout.split(" bytes in")[0].split()[-1])
        assert bytes_in > iterations  # it really fed the parser


def test_the_fuzzer_finds_a_planted_overflow(build):
    """The same run against a core whose command-length check is off by eight must fail."""
    compile_with, work = build
    broken = core_with_planted_overflow(work)
    result = _run(compile_with(broken, "fuzz_broken"), 20000, 1)
    assert result.returncode != 0
    assert "out of bounds" in result.stderr or "AddressSanitizer" in result.stderr
