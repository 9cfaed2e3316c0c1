"""Run a firmware image in QEMU and reach its UART over TCP, as if it were a board on a port.

QEMU is started with ``-icount shift=0`` (one instruction = 1 ns of virtual time, so the
board's clock counts instructions deterministically) and ``align=on``: QEMU holds the guest
back whenever its virtual clock gets ahead of the host's, so the board's time never runs
faster than real time (MLPerf Tiny's runner checks each performance window against host
wall-clock time). A guest slower than 1e9 instructions per second falls behind instead,
and QEMU says so on its log ("The guest is now late by …"); its windows then simply take
longer on the host. Its first UART is on a TCP server socket. ``wait=on`` holds the guest
until tinykd connects (with ``wait=off`` the banner sent before the connection is lost);
``nodelay=on`` on QEMU's side and TCP_NODELAY on ours cut a
command round trip from 44 ms (Nagle + delayed ACK) to about 0.4 ms.

``QemuBoard`` is a context manager: QEMU is stopped when the block ends, on errors and on
Ctrl-C too; it is never left running.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tinykd.errors import TinyKDError

QEMU_PACKAGE = "qemu-system-arm"
START_ATTEMPTS = 3  # a free port can be taken between choosing it and QEMU binding it
STOP_TIMEOUT_S = 5.0


def find_qemu(executable: str = "qemu-system-arm") -> str:
    path = shutil.which(executable)
    if path is None:
        raise TinyKDError(
            f"{executable} is not installed; a QEMU board needs it. On Debian/Ubuntu: "
            f"apt-get install --no-install-recommends {QEMU_PACKAGE}"
        )
    return path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def qemu_command(qemu: str, machine: str, elf: Path, port: int) -> list[str]:
    return [
        qemu,
        "-M",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-icount",
        "shift=0,align=on",
        "-serial",
        f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
        "-kernel",
        str(elf),
    ]


def set_tcp_nodelay(port) -> None:
    """Disable Nagle on a pyserial ``socket://`` port (pyserial leaves it on)."""
    sock = getattr(port, "_socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def open_socket_port(url: str, timeout_s: float):
    """A pyserial ``socket://`` port that keeps what the board sent before ``open`` returned.

    pyserial's socket port empties its input on open. With ``wait=on`` the guest boots the
    moment the connection is accepted, so its boot banner (``m-init-done``, ``m-ready``)
    can arrive in that instant and be thrown away (seen 1 time in 10 on a busy machine).
    """
    from serial.urlhandler.protocol_socket import Serial as SocketSerial

    class KeepEarlyInput(SocketSerial):
        opening = False

        def open(self):
            self.opening = True
            try:
                super().open()
            finally:
                self.opening = False

        def reset_input_buffer(self):
            if not self.opening:
                super().reset_input_buffer()

    port = KeepEarlyInput(url, timeout=timeout_s)
    set_tcp_nodelay(port)
    return port


class QemuBoard:
    """One QEMU process running ``elf``; ``open_serial()`` gives its UART as a pyserial port.

    >>> with QemuBoard(elf) as board:
    ...     port = board.open_serial()
    """

    def __init__(
        self,
        elf: Path,
        *,
        machine: str = "mps2-an386",
        executable: str = "qemu-system-arm",
        connect_timeout_s: float = 10.0,
        port: int = 0,
    ):
        self.elf = Path(elf)
        self.machine = machine
        self.executable = executable
        self.connect_timeout_s = connect_timeout_s
        self.requested_port = port  # 0: any free port
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._serial = None
        self._log = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("QemuBoard is not started")
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> QemuBoard:
        try:
            self.start()
        except BaseException:  # Ctrl-C while starting: __exit__ would not run
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        if not self.elf.is_file():
            raise TinyKDError(f"No firmware image at {self.elf}.")
        qemu = find_qemu(self.executable)
        self._log = tempfile.TemporaryFile(mode="w+")
        for _attempt in range(START_ATTEMPTS if self.requested_port == 0 else 1):
            self.port = self.requested_port or free_tcp_port()
            self.process = subprocess.Popen(
                qemu_command(qemu, self.machine, self.elf, self.port),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if self._wait_listening():
                return
            if "Address already in use" not in self.log():
                break
        message = self.log().strip() or "no output"
        self.stop()
        raise TinyKDError(f"QEMU ({self.machine}) did not start: {message}")

    def _wait_listening(self) -> bool:
        """True once QEMU waits for the connection (it then prints its 'waiting' line)."""
        deadline = time.monotonic() + self.connect_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if "waiting for connection" in self.log():
                return True
            time.sleep(0.01)
        return False

    def log(self) -> str:
        """What QEMU printed so far (its own messages; the UART goes to the socket)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def open_serial(self, timeout_s: float = 5.0):
        """Connect to the UART (this lets the guest start); returns a pyserial port."""
        import serial

        if self._serial is not None:
            raise RuntimeError("The UART of a QEMU board accepts one connection")
        try:
            self._serial = open_socket_port(self.url, timeout_s)
        except serial.SerialException as exc:
            raise TinyKDError(f"Could not connect to QEMU at {self.url}: {exc}") from None
        return self._serial

    def stop(self) -> None:
        """Close the connection and end QEMU (SIGTERM, then SIGKILL); safe to call twice."""
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
