"""Code and RAM of the firmware core on Cortex-M, the figures behind tinykd/export/fit.py.

Compiles firmware/core/tkd_core.c with arm-none-eabi-gcc -Os for Cortex-M0+, M4F and M7
(the fixture model of the tests: a 16-byte input) and prints text/data/bss as `size`
reports them. The input copy (TKD_INPUT_BYTES) is in bss and grows with the model.

    python bench/firmware_core_size.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinykd.firmware.render import config_header  # noqa: E402

CPUS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
}


def main() -> None:
    gcc, size = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-size")
    if not gcc or not size:
        sys.exit("needs gcc-arm-none-eabi (apt-get install gcc-arm-none-eabi)")
    with tempfile.TemporaryDirectory() as work:
        shutil.copy(ROOT / "tests/firmware/fixtures/model_settings.h", work)
        Path(work, "tkd_config.h").write_text(
            config_header(board_name="bench", baud=115200, cpu_hz=64_000_000, cycle_counter="dwt")
        )
        print(
            f"{'cpu':<15}{'text':>8}{'data':>8}{'bss':>8}   (bytes; bss includes a 16-byte input copy)"
        )
        for cpu, flags in CPUS.items():
            target = Path(work, f"{cpu}.o")
            subprocess.run(
                [gcc, *flags, "-mthumb", "-Os", "-std=c11", "-Wall", "-Wextra", "-Werror",
                 f"-I{work}", f"-I{ROOT / 'firmware/core'}", "-c",
                 str(ROOT / "firmware/core/tkd_core.c"), "-o", str(target)],
                check=True,
            )  # fmt: skip
            text, data, bss = (
                subprocess.run([size, str(target)], capture_output=True, text=True, check=True)
                .stdout.splitlines()[1]
                .split()[:3]
            )
            print(f"{cpu:<15}{text:>8}{data:>8}{bss:>8}")


if __name__ == "__main__":
    main()
