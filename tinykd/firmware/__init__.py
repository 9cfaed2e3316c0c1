"""Firmware: render a board project, build and flash it, or run its core on the host.

The C/C++ sources live in the repository's ``firmware/`` folder and are never edited in
place: ``render`` copies them with the generated model files into a fresh project.
"""
