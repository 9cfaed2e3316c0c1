"""``tinykd emulate``: serve the emulated board (or a QEMU board) on a socket or a pty.

The board runs until SIGTERM or Ctrl-C; the line ``listening on URL`` says where to reach
it (``HostDevice`` waits for that line).
"""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

from tinykd.errors import TinyKDError

DEFAULT_LISTEN = "socket://127.0.0.1:0"


def emulate(
    model: str,
    *,
    board: str = "emulated",
    listen: str = DEFAULT_LISTEN,
    pty: bool = False,
    baud: int | None = None,
    pacing: bool = True,
    labels: str | None = None,
    name: str | None = None,
    qemu: bool = False,
    tflm_dir: str | None = None,
) -> int:
    """The emulated board running ``model``; a QEMU board when asked for or when ``board``
    is one (device = "qemu")."""
    from tinykd.boards import load_board
    from tinykd.export.artifact import artifact_from_file

    path = Path(model)
    if not path.is_file():
        raise TinyKDError(f"{path} does not exist.")

    def artifact():  # measured only once the cheap checks have passed
        return artifact_from_file(path, name=name, labels=labels.split(",") if labels else None)

    if qemu or load_board(board).device == "qemu":
        if pty:
            raise TinyKDError("--qemu serves a socket (QEMU's own TCP server), not a pty.")
        return serve_qemu(artifact, path.name, board, listen, tflm_dir)
    return serve_emulated(artifact(), path.name, load_board(board), listen, pty, baud, pacing)


def parse_listen(url: str) -> tuple[str, int]:
    match = re.fullmatch(r"socket://([^:/]+):(\d+)", url)
    if not match:
        raise TinyKDError(f"--listen takes socket://HOST:PORT, not {url!r}.")
    return match.group(1), int(match.group(2))


def serve_emulated(artifact, file_name: str, board, listen, pty, baud, pacing) -> int:
    """The firmware core on the host, TFLM behind it, until SIGTERM (SIGUSR1: reset)."""
    from tinykd.measure.devices.emulator import (
        ANNOUNCEMENT,
        EmulatedBoard,
        serve_pty,
        serve_socket,
    )
    from tinykd.measure.harness.report import milliseconds

    emulated = EmulatedBoard(artifact, board, realtime=pacing)
    baud = (baud or board.baud) if pacing else None
    seconds = emulated.cycles_per_inference / board.cpu_hz
    print(
        f"tinykd emulated board '{board.name}': model {file_name} (hash "
        f"{emulated.core.model_hash}), arena used {emulated.arena_used:,} bytes (host 64-bit), "
        f"{emulated.cycles_per_inference:,} cycles per inference = "
        f"{milliseconds(seconds * 1000)} ms at {board.cpu_hz / 1e6:g} MHz (estimated), link "
        f"{'paced at ' + str(baud) + ' baud' if baud else 'unpaced'}, inferences "
        f"{'in real time' if pacing else 'as fast as the host runs them'}",
        flush=True,
    )
    signal.signal(signal.SIGUSR1, lambda *_: emulated.request_reset())
    stop = threading.Event()

    def terminate(*_) -> None:
        stop.set()
        emulated.request_stop()

    signal.signal(signal.SIGTERM, terminate)

    def announce(where: str) -> None:
        print(f"{ANNOUNCEMENT}{where}", flush=True)

    if pty:
        serve_pty(emulated, baud, announce, stop)
    else:
        host, port = parse_listen(listen)
        serve_socket(emulated, host, port, baud, announce, stop)
    return 0


def serve_qemu(artifact, file_name: str, board_name: str, listen: str, tflm_dir) -> int:
    """The firmware of ``artifact()`` in QEMU, its UART on ``listen``'s port, until SIGTERM."""
    from tinykd.commands.bench import qemu_board
    from tinykd.firmware.baremetal import build_model_firmware, qemu_target
    from tinykd.measure.devices.emulator import ANNOUNCEMENT
    from tinykd.measure.devices.qemu import QemuBoard

    board = qemu_board(board_name)
    host, port = parse_listen(listen)
    if host not in ("127.0.0.1", "localhost"):
        raise TinyKDError("--qemu listens on 127.0.0.1 only.")
    image, tflm = build_model_firmware(board, artifact(), tflm_dir=tflm_dir)
    print(
        f"tinykd {board.name} in QEMU: model {file_name}, firmware {image.elf} (TFLM "
        f"{tflm.kernels} kernels), flash {image.sizes.flash_bytes:,} bytes, static RAM "
        f"{image.sizes.static_ram_bytes:,} bytes; latency in instructions",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with QemuBoard(image.elf, machine=qemu_target(board).machine, port=port) as qemu:
            print(f"{ANNOUNCEMENT}{qemu.url}", flush=True)
            while not stop.wait(0.2):
                if qemu.process.poll() is not None:
                    raise TinyKDError(f"QEMU stopped: {qemu.log().strip()}")
    except KeyboardInterrupt:
        pass
    return 0
