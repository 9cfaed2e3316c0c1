"""Which boards are attached: USB VID:PID of each serial port against ``boards/*.toml``.

Several boards share a USB-serial bridge (a CP2102 sits on many ESP32 boards), so a port
can match more than one profile; the device then names its board itself in the
handshake (``m-tkd-board-[…]``).
"""

from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports

from tinykd.boards import Board, board_registry


@dataclass(frozen=True)
class AttachedBoard:
    port: str  # what pyserial opens: /dev/ttyACM0, COM3, …
    usb_id: str  # "VID:PID", upper-case hex
    candidates: tuple[Board, ...]  # profiles whose usb_ids contain usb_id
    description: str = ""
    serial_number: str = ""

    @property
    def board(self) -> Board | None:
        """The profile if exactly one matches."""
        return self.candidates[0] if len(self.candidates) == 1 else None

    @property
    def names(self) -> str:
        return " or ".join(board.name for board in self.candidates)


def attached_boards(ports=None) -> list[AttachedBoard]:
    """Serial ports whose USB id belongs to a board profile (``ports``: for tests)."""
    registry = board_registry()
    boards = [registry.get(name) for name in registry.names()]
    found = []
    for port in list_ports.comports() if ports is None else ports:
        if port.vid is None or port.pid is None:
            continue
        usb_id = f"{port.vid:04X}:{port.pid:04X}"
        candidates = tuple(board for board in boards if usb_id in board.usb_ids)
        if candidates:
            found.append(
                AttachedBoard(
                    port=port.device,
                    usb_id=usb_id,
                    candidates=candidates,
                    description=port.description or "",
                    serial_number=port.serial_number or "",
                )
            )
    return sorted(found, key=lambda attached: attached.port)


def print_attached_boards(ports=None) -> None:
    """The ``Attached:`` part of ``tinykd boards``: one line per matching port."""
    attached = attached_boards(ports)
    if not attached:
        print("\nAttached: no serial port with a USB id from these profiles.")
        return
    print("\nAttached (tinykd bench --all benchmarks each):")
    for found in attached:
        print(f"  {found.port:16} {found.usb_id}  {found.names:28} {found.description}")
