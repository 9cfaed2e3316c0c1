"""External programs the firmware stage uses, found at run time.

A missing one is one ``TinyKDError`` naming the install command; ``TINYKD_<NAME>``
(e.g. ``TINYKD_ARDUINO_CLI=/opt/arduino-cli``) points at a program outside ``PATH``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from tinykd.errors import TinyKDError


@dataclass(frozen=True)
class Tool:
    name: str
    executables: tuple[str, ...]
    install: str
    environment: tuple[str, ...] = ()  # variables checked before PATH

    def find(self) -> str | None:
        for variable in (
            f"TINYKD_{self.name.upper().replace('-', '_').replace('.', '_')}",
            *self.environment,
        ):
            value = os.environ.get(variable)
            if value and shutil.which(value):
                return shutil.which(value)
        for executable in self.executables:
            path = shutil.which(executable)
            if path:
                return path
        return None

    def require(self, purpose: str) -> str:
        path = self.find()
        if path is None:
            raise TinyKDError(
                f"{self.name} is needed to {purpose} but is not installed. Install it: {self.install}"
            )
        return path


ARDUINO_CLI = Tool(
    "arduino-cli",
    ("arduino-cli",),
    "see https://arduino.github.io/arduino-cli/latest/installation/ (e.g. `brew install arduino-cli`), "
    "then `arduino-cli core update-index`",
)
PLATFORMIO = Tool("platformio", ("pio", "platformio"), "`pip install platformio`")
IDF_PY = Tool(
    "idf.py",
    ("idf.py",),
    "install ESP-IDF 5.x (Espressif's ESP-IDF Get Started guide), then `. $IDF_PATH/export.sh`",
)
C_COMPILER = Tool("cc", ("cc", "gcc", "clang"), "`apt-get install gcc`", ("CC",))
CXX_COMPILER = Tool("c++", ("c++", "g++", "clang++"), "`apt-get install g++`", ("CXX",))
