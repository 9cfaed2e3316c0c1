"""Board profiles: every shipped profile loads, and loading rejects every kind of bad field."""

from __future__ import annotations

import tomllib

import pytest

from tinykd.boards import BOARDS_DIR, TICK_UNITS, list_boards, load_board, parse_board
from tinykd.errors import TinyKDError

REQUIRED_BOARDS = {
    "nano33ble",
    "nano_rp2040_connect",
    "pico",
    "esp32",
    "esp32s3",
    "xiao_esp32s3",
    "nucleo_l4r5zi",
    "portenta_h7",
    "emulated",
}


def test_required_boards_are_present():
    assert REQUIRED_BOARDS <= set(list_boards())


@pytest.mark.parametrize("name", sorted(REQUIRED_BOARDS))
def test_profile_is_consistent(name):
    board = load_board(name)
    assert 0 < board.usable_sram_bytes < board.sram_bytes
    assert 0 < board.usable_flash_bytes < board.flash_bytes
    assert board.tick_unit == TICK_UNITS[board.cycle_counter]
    assert board.cycles_per_mac["default"] > 0
    assert board.project_kinds()
    if board.device == "serial":
        assert board.usb_ids and board.arduino is not None


def test_each_profile_names_its_device_kind():
    kinds = {name: load_board(name).device for name in list_boards()}
    assert kinds["emulated"] == "host"
    assert kinds["mps2_an386"] == "qemu"
    assert {kinds[name] for name in REQUIRED_BOARDS - {"emulated"}} == {"serial"}


def test_cycle_counter_follows_the_cpu():
    assert load_board("nano33ble").cycle_counter == "dwt"  # Cortex-M4
    assert load_board("portenta_h7").cycle_counter == "dwt"  # Cortex-M7
    assert load_board("pico").cycle_counter == "micros"  # Cortex-M0+: no DWT
    assert load_board("nano_rp2040_connect").cycle_counter == "micros"
    assert load_board("esp32s3").cycle_counter == "ccount"


def test_latency_model_uses_per_op_cycles():
    board = load_board("nucleo_l4r5zi")
    macs = {"CONV_2D": 1_000_000, "FULLY_CONNECTED": 10_000, "MEAN": 100}
    expected = 1_000_000 * 7.0 + 10_000 * 6.0 + 100 * 9.0  # conv_2d, fully_connected, default
    assert board.estimate_cycles(macs) == expected
    assert board.estimate_seconds(macs) == pytest.approx(expected / 120e6)


def test_unknown_board_suggests_a_name():
    with pytest.raises(TinyKDError, match="Did you mean 'nano33ble'"):
        load_board("nano33")


def _nano33ble() -> dict:
    return tomllib.loads((BOARDS_DIR / "nano33ble.toml").read_text())


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.pop("cpu_hz"), "missing required key 'cpu_hz'"),
        (lambda d: d.update(cpu_hz="64 MHz"), "'cpu_hz' must be int"),
        (lambda d: d.update(baud=0), "'baud' must be > 0"),
        (lambda d: d.update(baud=True), "'baud' must be int"),
        (lambda d: d.update(bauds=9600), "unknown key 'bauds'. Did you mean 'baud'"),
        (lambda d: d.update(cycle_counter="systick"), "'cycle_counter' is 'systick'"),
        (lambda d: d.pop("device"), "missing required key 'device'"),
        (lambda d: d.update(device="usb"), "'device' is 'usb'; expected one of host, qemu, serial"),
        (lambda d: d.update(device="qemu"), "device 'qemu' and a \\[qemu\\] table go together"),
        (lambda d: d.update(device="host"), "device 'host' .* and cycle_counter 'host'"),
        (lambda d: d.update(cpu="cortex-m0plus"), "'dwt' needs a Cortex-M3/M4/M7"),
        (lambda d: d.update(usb_ids=["2341:805a"]), "upper-case hex"),
        (lambda d: d.update(reserved_sram_bytes=300_000), "reserved_sram_bytes must be in"),
        (lambda d: d.update(reserved_flash_bytes=-1), "reserved_flash_bytes must be in"),
        (lambda d: d["arduino"].update(fqbn="nano33ble"), "fqbn 'nano33ble' must be"),
        (lambda d: d["arduino"].pop("libraries"), "missing required key 'libraries'"),
        (lambda d: d["arduino"].update(extra=1), r"\[arduino\]: unknown key 'extra'"),
        (lambda d: d["platformio"].update(framework="mbed"), "'framework' is 'mbed'"),
        (lambda d: d["cycles_per_mac"].pop("default"), "needs a 'default' entry"),
        (lambda d: d["cycles_per_mac"].update(conv_2d=-1.0), "'conv_2d' must be > 0"),
        (lambda d: d.pop("cycles_per_mac"), "missing \\[cycles_per_mac\\]"),
        (lambda d: (d.pop("arduino"), d.pop("platformio")), "no way to build firmware"),
        (lambda d: d.pop("arduino"), r"\[platformio\] builds the Arduino sketch"),
        (lambda d: d.update(esp_idf={"target": "esp32c3"}), "'target' is 'esp32c3'"),
    ],
)
def test_invalid_profiles_are_rejected_with_the_key_named(change, message):
    data = _nano33ble()
    change(data)
    with pytest.raises(TinyKDError, match=message):
        parse_board(data, "nano33ble")


def test_board_folder_can_be_overridden(tmp_path, monkeypatch):
    (tmp_path / "custom.toml").write_text(
        (BOARDS_DIR / "pico.toml").read_text().replace("Raspberry Pi Pico", "Mine")
    )
    monkeypatch.setenv("TINYKD_BOARDS_DIR", str(tmp_path))
    assert list_boards() == ["custom"]
    assert load_board("custom").title == "Mine"


def test_a_bad_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken.toml").write_text("title = \n")
    monkeypatch.setenv("TINYKD_BOARDS_DIR", str(tmp_path))
    with pytest.raises(TinyKDError, match="broken.toml: not valid TOML"):
        list_boards()
