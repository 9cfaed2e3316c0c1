"""The boards the harness benchmarks, behind one ``Device`` interface (``base.py``).

One kind per board profile's ``device`` key: ``SerialDevice`` (a board on a port),
``HostDevice`` (the emulated board: the firmware core compiled for the host, run by
``emulator.py``) and ``QemuDevice`` (the firmware in QEMU, run by ``qemu.py``). In tinykd
"emulated" always means the first of those two: a QEMU board runs the real firmware.
"""

from tinykd.measure.devices.base import Device
from tinykd.measure.devices.host_device import HostDevice
from tinykd.measure.devices.qemu_device import QemuDevice
from tinykd.measure.devices.serial_device import SerialDevice

__all__ = ["Device", "HostDevice", "QemuDevice", "SerialDevice"]
