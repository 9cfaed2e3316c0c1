"""The QEMU runner's host side, without QEMU: the socket port and the command line."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import serial.urlhandler.protocol_socket as protocol_socket

from tinykd.measure.devices.qemu import open_socket_port, qemu_command


def test_boot_output_sent_during_open_is_kept(monkeypatch):
    """pyserial's socket:// port discards input on open; a board's banner must survive."""
    server = socket.create_server(("127.0.0.1", 0))

    def board():
        connection, _ = server.accept()
        connection.sendall(b"m-init-done\r\nm-ready\r\n")  # at once, as a booting guest
        time.sleep(0.5)
        connection.close()

    thread = threading.Thread(target=board)
    thread.start()
    original = protocol_socket.Serial._reconfigure_port

    def slow_reconfigure(self, *args, **kwargs):
        time.sleep(0.3)  # the banner is surely in the socket before open() returns
        return original(self, *args, **kwargs)

    monkeypatch.setattr(protocol_socket.Serial, "_reconfigure_port", slow_reconfigure)
    port = open_socket_port(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout_s=2)
    try:
        assert port.readline() == b"m-init-done\r\n"
        assert port._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        port.close()
        thread.join()
        server.close()


def test_qemu_command_line():
    """Deterministic instruction counts, the UART on a waiting no-delay TCP server."""
    command = qemu_command("qemu-system-arm", "mps2-an386", Path("fw.elf"), 4321)
    joined = " ".join(command)
    assert command[:3] == ["qemu-system-arm", "-M", "mps2-an386"]
    assert "-icount shift=0" in joined and "-monitor none" in joined
    assert "-serial tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on" in joined
    assert command[-2:] == ["-kernel", "fw.elf"]


def test_report_calls_qemu_latency_instructions():
    from tinykd.measure.harness.report import _latency

    latency = {"samples": 3, "median_ms": 1.57216, "p90_ms": 1.6, "p99_ms": 1.7}
    cell = _latency({**latency, "unit": "instructions", "median_ticks": 1572160.0})
    assert cell.startswith("1,572,160 instructions per inference") and "cycles" not in cell
