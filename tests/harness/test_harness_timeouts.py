"""Every wait of the harness ends: a device that floods, stops reading or never starts is a
reported failure, never a hang. Real sockets on 127.0.0.1; each test bounds its own wait."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from tinykd.errors import TinyKDError
from tinykd.measure.devices.host_device import start_emulator_process
from tinykd.measure.harness import link as link_module
from tinykd.measure.harness.link import Link, LinkLost, LinkTimeout


@pytest.fixture
def server():
    """A TCP server that accepts one client: (url, accepted connections)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    yield f"socket://127.0.0.1:{listener.getsockname()[1]}", accepted
    for connection in accepted:
        connection.close()
    listener.close()


def _wait_for(accepted: list) -> socket.socket:
    deadline = time.monotonic() + 5
    while not accepted:
        assert time.monotonic() < deadline, "the link never connected"
        time.sleep(0.01)
    return accepted[0]


def test_bytes_without_a_line_end_end_the_read_early(server):
    url, accepted = server
    link = Link(url, 115200)
    device = _wait_for(accepted)
    device.sendall(b"x" * (3 * link_module.MAX_LINE_BYTES))
    started = time.monotonic()
    with pytest.raises(LinkTimeout, match="longer than"):
        link.read_line(time.monotonic() + 30)
    assert time.monotonic() - started < 10  # not the 30 s deadline
    link.close()


def test_a_device_that_stops_reading_ends_a_write(server, monkeypatch):
    monkeypatch.setattr(link_module, "WRITE_TIMEOUT_SECONDS", 0.5)
    url, accepted = server
    link = Link(url, 115200)
    _wait_for(accepted)  # connected, but never reads
    outcome: list[BaseException | None] = []

    def write_a_lot() -> None:
        try:
            for _ in range(64):  # far more than the socket buffers hold
                link.write(b"\0" * (1 << 20))
            outcome.append(None)
        except LinkLost as error:
            outcome.append(error)

    writer = threading.Thread(target=write_a_lot, daemon=True)
    writer.start()
    writer.join(timeout=20)
    assert not writer.is_alive(), "the write blocked with no timeout"
    assert isinstance(outcome[0], LinkLost)
    link.close()


def test_an_emulator_that_does_not_start_in_time_is_reported(model_path):
    started = time.monotonic()
    with pytest.raises(TinyKDError, match="did not start: it printed no .* within 0.001 s"):
        start_emulator_process(model_path, pacing=False, timeout=0.001)
    assert time.monotonic() - started < 15  # 1 ms, then at most SIGTERM's grace


def test_bench_reports_an_emulator_start_timeout(model_path, tmp_path):
    result = subprocess.run(
        [
            sys.executable, "-m", "tinykd.cli", "bench", "--model", str(model_path),
            "--dataset", "digits", "--limit", "5", "--emulate", "--no-pacing",
            "--start-timeout", "0.001", "--out", str(tmp_path / "bench"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "The emulated board did not start" in result.stderr
