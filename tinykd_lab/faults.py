"""A fault injector: a TCP proxy between the harness and a device that breaks the link.

Each ``Fault`` fires once, when the byte at offset ``at_byte`` of one direction passes
through (offsets count from the first connection, across reconnects), so a run with a
given fault list is reproducible. Kinds:

- ``drop``: the next ``count`` bytes are not forwarded;
- ``corrupt``: the next ``count`` bytes are XOR-ed with a non-zero mask;
- ``delay``: forwarding stops for ``seconds`` before that byte;
- ``reset``: the ``reset`` callback runs (e.g. SIGUSR1 to ``tinykd emulate``: the board
  reboots and prints its banner again);
- ``vanish``: both connections close and the proxy refuses new ones (a board unplugged).

A fault with ``match`` fires relative to a place in the stream instead: at ``at_byte``
bytes after the start of the ``occurrence``-th appearance of ``match`` in its direction
(``Fault("corrupt", "to_host", 14, match=b"m-tkd-hash-[")`` garbles the third digit of
the model hash in the first ``tkd-info`` reply), so a test can aim at one reply.

``events`` lists the faults that fired, for tests to compare with the harness's report.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

KINDS = ("drop", "corrupt", "delay", "reset", "vanish")
DIRECTIONS = ("to_device", "to_host")


@dataclass(frozen=True)
class Fault:
    kind: str
    direction: str
    at_byte: int
    count: int = 1
    seconds: float = 0.0
    match: bytes = b""  # when set, at_byte counts from the start of this pattern
    occurrence: int = 1  # which appearance of ``match`` (1: the first)
    mask: int = 0  # corrupt: XOR with this byte (0: a random non-zero mask)

    def __post_init__(self):
        if self.kind not in KINDS or self.direction not in DIRECTIONS:
            raise ValueError(f"unknown fault {self.kind!r} / direction {self.direction!r}")
        if self.occurrence < 1:
            raise ValueError("occurrence counts from 1")

    def at_offset(self, offset: int) -> Fault:
        """This fault fixed at an absolute stream offset (its pattern has been seen)."""
        return Fault(self.kind, self.direction, offset, self.count, self.seconds, mask=self.mask)


def _parse_socket_url(url: str) -> tuple[str, int]:
    if not url.startswith("socket://"):
        raise ValueError(f"the fault injector proxies socket:// URLs, not {url!r}")
    host, _, port = url[len("socket://") :].split("?")[0].rpartition(":")
    return host, int(port)


class FaultInjector:
    """``start()`` returns the URL the harness should open instead of the device's."""

    def __init__(
        self,
        upstream_url: str,
        faults: list[Fault],
        *,
        reset: Callable[[], None] | None = None,
        seed: int = 0,
    ):
        self.upstream = _parse_socket_url(upstream_url)
        self.pending = {
            d: sorted(
                (f for f in faults if f.direction == d and not f.match), key=lambda f: f.at_byte
            )
            for d in DIRECTIONS
        }
        # Pattern faults wait here, each with the appearances of its pattern seen so far.
        self.watching = {
            d: [[f, 0] for f in faults if f.direction == d and f.match] for d in DIRECTIONS
        }
        self.history = dict.fromkeys(DIRECTIONS, b"")  # the stream's tail, for split patterns
        self.reset = reset
        self.random = random.Random(seed)
        self.offsets = dict.fromkeys(DIRECTIONS, 0)
        self.events: list[dict] = []
        self.vanished = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> str:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return f"socket://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self.vanished.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in [*sockets, self._listener]:
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def _accept(self) -> None:
        while not self.vanished.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                device = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, device):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, device]
            threading.Thread(
                target=self._pump, args=(client, device, "to_device"), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(device, client, "to_host"), daemon=True
            ).start()

    def _pump(self, source: socket.socket, target: socket.socket, direction: str) -> None:
        try:
            while not self.vanished.is_set():
                data = source.recv(65536)
                if not data:
                    break
                self._forward(data, target, direction)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _arm_pattern_faults(self, data: bytes, start: int, direction: str) -> None:
        """Turn pattern faults whose pattern ends in ``data`` into offset faults."""
        watching = self.watching[direction]
        if not watching:
            return
        tail = self.history[direction]
        text, base = tail + data, start - len(tail)
        longest = max(len(fault.match) for fault, _ in watching)
        self.history[direction] = text[-(longest - 1) :] if longest > 1 else b""
        for entry in list(watching):
            fault, seen = entry
            # Only appearances that end in the new bytes: the tail's own were counted.
            position = text.find(fault.match, max(0, len(tail) - len(fault.match) + 1))
            while position >= 0:
                seen += 1
                if seen == fault.occurrence:
                    offset = max(start, base + position + fault.at_byte)
                    self.pending[direction].append(fault.at_offset(offset))
                    self.pending[direction].sort(key=lambda f: f.at_byte)
                    watching.remove(entry)
                    break
                position = text.find(fault.match, position + 1)
            entry[1] = seen

    def _forward(self, data: bytes, target: socket.socket, direction: str) -> None:
        start = self.offsets[direction]
        self.offsets[direction] += len(data)
        self._arm_pattern_faults(data, start, direction)
        queue = self.pending[direction]
        out = bytearray()
        cursor = 0
        while queue and queue[0].at_byte < start + len(data):
            fault = queue.pop(0)
            position = max(fault.at_byte - start, cursor)
            out += data[cursor:position]
            cursor = position
            self.events.append({"time": time.monotonic(), **fault.__dict__})
            if fault.kind == "drop":
                cursor = min(len(data), position + fault.count)
            elif fault.kind == "corrupt":
                for index in range(position, min(len(data), position + fault.count)):
                    out.append(data[index] ^ (fault.mask or self.random.randrange(1, 256)))
                cursor = min(len(data), position + fault.count)
            elif fault.kind == "delay":
                target.sendall(out)
                out.clear()
                time.sleep(fault.seconds)
            elif fault.kind == "reset":
                target.sendall(out)
                out.clear()
                if self.reset is not None:
                    self.reset()
            elif fault.kind == "vanish":
                target.sendall(out)
                self.close()
                return
        out += data[cursor:]
        if out:
            target.sendall(out)
