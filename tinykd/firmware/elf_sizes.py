"""SRAM and flash: what a build uses (from its ELF file) and whether a model fits a board.

A firmware ELF says what the build needs before it runs: flash = code and constants
(text) plus initialised data, static RAM = initialised data plus zeroed data (bss), the
sums binutils' ``size`` prints. The tensor arena is a static array in bss, sized for the
model; the device reports how much of it the model really uses ("arena used"), so the
SRAM figure of a report is static RAM - arena array + arena used.

Without a build, ``tinykd.export.fit`` estimates both from the board profile.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from tinykd.errors import TinyKDError

SHF_WRITE, SHF_ALLOC = 0x1, 0x2
SHT_NOBITS = 8


@dataclass(frozen=True)
class BuildSizes:
    """Berkeley ``size`` figures of an ELF file, in bytes."""

    text: int
    data: int
    bss: int

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data

    @property
    def static_ram_bytes(self) -> int:
        return self.data + self.bss


def elf_sizes(path: str | Path) -> BuildSizes:
    """text, data and bss of an ELF file (32- or 64-bit, either byte order)."""
    blob = Path(path).read_bytes()
    if blob[:4] != b"\x7fELF":
        raise TinyKDError(f"{path} is not an ELF file (pass the firmware's .elf).")
    is_64 = blob[4] == 2
    order = "<" if blob[5] == 1 else ">"
    if is_64:
        (shoff,) = struct.unpack_from(order + "Q", blob, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", blob, 0x3A)
        layout = order + "IIQQQQ"
    else:
        (shoff,) = struct.unpack_from(order + "I", blob, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", blob, 0x2E)
        layout = order + "IIIIII"
    text = data = bss = 0
    for index in range(shnum):
        _, kind, flags, _, _, size = struct.unpack_from(layout, blob, shoff + index * shentsize)
        if not flags & SHF_ALLOC:
            continue
        if not flags & SHF_WRITE:
            text += size
        elif kind == SHT_NOBITS:
            bss += size
        else:
            data += size
    return BuildSizes(text=text, data=data, bss=bss)
