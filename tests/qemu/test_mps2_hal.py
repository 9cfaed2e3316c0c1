"""The mps2-an386 HAL in QEMU: boot, UART both ways, instruction clock, faults, clean stop."""

from __future__ import annotations

import statistics
import subprocess
import time

import pytest

from tinykd.errors import TinyKDError
from tinykd.measure.devices.qemu import QemuBoard

BOOT_TIMEOUT_S = 30  # generous: QEMU starts slowly on a loaded machine
TICK = 40  # instructions per Timer0 tick: 1e9 instructions/s (icount shift=0) / 25 MHz


def ask(port, command: str) -> str:
    port.write(command.encode() + b"\n")
    return port.readline().decode().rstrip("\n")


@pytest.fixture()
def probe(hal_probe_elf):
    with QemuBoard(hal_probe_elf) as board:
        port = board.open_serial(timeout_s=BOOT_TIMEOUT_S)
        assert port.readline() == b"probe ready\n"
        port.timeout = 5
        yield port


def test_uart_round_trips_text(probe):
    assert ask(probe, "ping") == "pong"
    text = "".join(chr(code) for code in range(32, 127)) * 2  # 190 printable bytes
    assert ask(probe, f"echo {text}") == text


def test_clock_counts_instructions(probe):
    assert ask(probe, "unit") == "instructions 1000000000"
    # The probe's loop is `subs; bne`: exactly 2 instructions per iteration, so the
    # expected counts follow by hand; the timer resolves 40 instructions.
    for iterations in (1_000, 250_000, 1_000_000):
        ticks = int(ask(probe, f"spin {iterations}"))
        assert abs(ticks - 2 * iterations) <= TICK + 8, (iterations, ticks)
        assert ticks % TICK == 0


def test_round_trip_has_no_nagle_delay(probe):
    """nodelay=on in QEMU plus TCP_NODELAY here: ~0.4 ms, not 44 ms, per round trip."""
    times = []
    for _ in range(15):
        start = time.perf_counter()
        assert ask(probe, "ping") == "pong"
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.015, times


def test_fault_is_reported_on_the_uart(probe):
    probe.write(b"fault\n")
    assert probe.readline() == b"e-[fault: HardFault]\r\n"


def test_qemu_is_stopped_after_the_block_even_on_error(hal_probe_elf):
    with pytest.raises(RuntimeError, match="boom"), QemuBoard(hal_probe_elf) as board:
        process = board.process
        board.open_serial()
        raise RuntimeError("boom")
    assert process.poll() is not None
    assert board.process is None


def test_nothing_is_loaded_over_the_code_mirror(hal_probe_elf):
    """.bss/heap/stack must be '> RAM AT > RAM', or QEMU zero-fills code memory."""
    headers = subprocess.run(
        ["arm-none-eabi-readelf", "-lW", str(hal_probe_elf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in headers.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD":
            physical, file_size, memory_size = (int(fields[i], 16) for i in (3, 4, 5))
            if physical < 0x20000000:
                assert file_size == memory_size, line


def test_missing_qemu_is_a_clear_error(tmp_path):
    elf = tmp_path / "x.elf"
    elf.write_bytes(b"")
    with pytest.raises(TinyKDError, match="apt-get install"):
        QemuBoard(elf, executable="qemu-system-does-not-exist").start()
