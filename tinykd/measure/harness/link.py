"""The serial link: any pyserial URL (a real port, ``socket://host:port``, a pty path).

One code path for every transport: ``serial.serial_for_url`` opens it, and the reader
below only uses what every pyserial backend offers (``read`` with a timeout). A TCP link
gets ``TCP_NODELAY``: without it every command round trip waits for Nagle's algorithm
(about 40 ms), which would make a socket look slower than a 115200 baud UART.
"""

from __future__ import annotations

import socket
import time

import serial


class LinkLost(Exception):
    """The port went away (cable pulled, socket closed, board re-enumerating)."""


class LinkTimeout(Exception):
    """Nothing complete arrived before the deadline."""


POLL_SECONDS = 0.05  # longest single blocking read, so deadlines are kept closely
WRITE_TIMEOUT_SECONDS = 10.0  # a device that stops reading ends a write as a lost link
MAX_LINE_BYTES = 1 << 16  # longer than any reply line; endless bytes without a newline end here


def open_port(url: str, baud: int) -> serial.SerialBase:
    """Open ``url`` with pyserial; raises ``LinkLost`` if it cannot be opened."""
    try:
        port = serial.serial_for_url(
            url, baudrate=baud, timeout=POLL_SECONDS, write_timeout=WRITE_TIMEOUT_SECONDS
        )
    except (serial.SerialException, OSError, ValueError) as error:
        raise LinkLost(str(error) if url in str(error) else f"cannot open {url}: {error}") from None
    tcp = getattr(port, "_socket", None)
    if isinstance(tcp, socket.socket):
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return port


class Link:
    """Bytes out, lines in, with deadlines; counts every byte moved in both directions."""

    def __init__(self, url: str, baud: int):
        self.url, self.baud = url, baud
        self.port = open_port(url, baud)
        self._pending = bytearray()
        self.bytes_written = 0
        self.bytes_read = 0

    @property
    def byte_seconds(self) -> float:
        """Seconds one byte takes on the wire (8N1: ten bits per byte)."""
        return 10.0 / self.baud

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as error:
            raise LinkLost(f"writing to {self.url} failed: {error}") from None
        self.bytes_written += len(data)

    def _receive(self, wait: float) -> bool:
        """Wait up to ``wait`` seconds for bytes; append all that arrived. False if none did."""
        try:
            self.port.timeout = max(0.0, min(wait, POLL_SECONDS))
            chunk = self.port.read(1)
            if chunk:
                self.port.timeout = 0
                chunk += self.port.read(1 << 16)
        except (serial.SerialException, OSError, TypeError) as error:
            # pyserial's posix backend raises TypeError when the port closes under it.
            raise LinkLost(f"reading from {self.url} failed: {error}") from None
        self._pending += chunk
        self.bytes_read += len(chunk)
        return bool(chunk)

    def read_line(self, deadline: float) -> str:
        """The next line without its line ending; ``LinkTimeout`` at ``deadline`` (monotonic)."""
        while True:
            end = self._pending.find(b"\n")
            if end >= 0:
                raw = bytes(self._pending[:end])
                del self._pending[: end + 1]
                return raw.rstrip(b"\r").decode("ascii", errors="replace")
            if len(self._pending) > MAX_LINE_BYTES:
                self._pending.clear()
                raise LinkTimeout(f"a line longer than {MAX_LINE_BYTES} bytes ({self.url})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeout(f"no complete line within the deadline ({self.url})")
            self._receive(remaining)

    def discard_pending(self) -> None:
        """Forget a partial line (after a resynchronisation)."""
        self._pending.clear()

    def close(self) -> None:
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass
