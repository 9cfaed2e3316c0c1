"""Firmware: build tinykd's board firmware and run it on emulated boards."""
