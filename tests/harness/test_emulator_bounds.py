"""The emulated board stays bounded and responsive whatever arrives on its link.

Raw sockets to a real ``tinykd emulate`` process on 127.0.0.1; every read has a deadline,
so a wedged or crashed emulator fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from tinykd.measure.devices.host_device import start_emulator_process
from tinykd.measure.harness.protocol import bulk_command

STARTED = 1.5  # seconds after which a sent infer command is surely running
HELP_COMMANDS = 20_000  # "help%" x 20,000 = 100 KB in, about 18 MB of replies out


class RawLink:
    """A plain TCP client with deadline-bounded reads."""

    def __init__(self, url: str):
        host, port = url[len("socket://") :].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.received = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, marker: bytes, seconds: float, count: int = 1) -> bytes:
        """Everything up to the ``count``-th ``marker``; fails after ``seconds``."""
        deadline = time.monotonic() + seconds
        while self.received.count(marker) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {marker!r} x{count} in {seconds} s: {self.received[-300:]!r}"
            self.sock.settimeout(min(remaining, 0.5))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            assert chunk, f"the emulator closed the link; last bytes {self.received[-300:]!r}"
            self.received += chunk
        end = 0
        for _ in range(count):
            end = self.received.index(marker, end) + len(marker)
        text = bytes(self.received[:end])
        del self.received[:end]
        return text

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def board(model_path):
    """A fresh unpaced emulator: (process, connected RawLink)."""
    process, url = start_emulator_process(model_path, pacing=False)
    link = RawLink(url)
    link.read_until(b"m-init-done\r\nm-ready\r\n", 30)
    yield process, link
    link.close()
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _load_input(link: RawLink, size: int) -> None:
    data = bytes(index % 256 for index in range(size))
    link.send(bulk_command(data) + data)
    reply = link.read_until(b"m-ready\r\n", 10)
    assert b"m-load-done" in reply, reply


def test_a_flood_of_help_commands_is_answered_in_full(board):
    process, link = board
    link.send(b"help%" * HELP_COMMANDS)
    replies = link.read_until(b"m-ready\r\n", 120, count=HELP_COMMANDS)
    assert replies.count(b"tkd-bulk N C") == HELP_COMMANDS
    link.send(b"name%")
    assert link.read_until(b"m-ready\r\n", 10) == b"m-name-dut-[tinykd]\r\nm-ready\r\n"
    assert process.poll() is None


def test_four_billion_inferences_are_refused_at_once(board, bench_model):
    _, link = board
    _load_input(link, bench_model.identity.input_bytes)
    link.send(b"infer 4294967295 0%infer 1 4294967295%")
    replies = link.read_until(b"m-ready\r\n", 10, count=2).decode()
    assert replies.count("e-[Inference runs and warmup must be at most 1000000 each]") == 2
    link.send(b"infer 1 0%")
    assert b"m-infer-done" in link.read_until(b"m-ready\r\n", 10)


def test_a_long_infer_obeys_reset_and_sigterm(board, bench_model):
    process, link = board
    _load_input(link, bench_model.identity.input_bytes)
    link.send(b"infer 1000000 0%")
    time.sleep(STARTED)  # the emulator writes the reply only once the command returns
    os.kill(process.pid, signal.SIGUSR1)
    interrupted = link.read_until(b"m-init-done\r\nm-ready\r\n", 10).decode()  # reset works mid-run
    assert "m-infer-start-1000000" in interrupted and "e-[Invoke failed with code 2]" in interrupted
    _load_input(link, bench_model.identity.input_bytes)
    link.send(b"infer 1000000 0%")
    time.sleep(STARTED)
    process.terminate()
    process.wait(timeout=10)  # raises TimeoutExpired if SIGTERM is ignored
