"""Atomic file output (a crash or Ctrl-C never leaves a half-written file behind) and the
one cache folder every stage shares."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tinykd.errors import TinyKDError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes 0600 files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_model_atomic(model, path: str | Path) -> Path:
    """``model.save`` to a hidden temporary beside ``path`` (same suffix, so Keras accepts
    it), then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        model.save(temporary)
        fsync_tree(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def cache_dir(*parts: str) -> Path:
    """A folder under the tinykd cache (``TINYKD_CACHE_DIR``, else ``$XDG_CACHE_HOME/tinykd``,
    else ``~/.cache/tinykd``), created if missing."""
    root = os.environ.get("TINYKD_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "tinykd")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(path: str | Path) -> None:
    """Flush a file, or every file and folder under a folder, to the disk."""
    path = Path(path)
    for target in [path] if path.is_file() else [*path.rglob("*"), path]:
        _fsync(target)


def check_writable_dir(path: str | Path, what: str = "output.dir") -> None:
    """Fail now, before hours of training, if ``path`` cannot become a directory written
    the way :func:`atomic_directory` writes it (a sibling folder renamed into place)."""
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise TinyKDError(f"{what} {path} exists and is not a directory; choose another path.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.check-"))
    except OSError as exc:
        raise TinyKDError(
            f"{what} {path} cannot be written ({exc.strerror}: {exc.filename}); "
            "choose a folder you can write to (--out)."
        ) from None


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return result == 0


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Fill a new hidden sibling of ``path``; once the block ends without error, flush it
    and put it in place of ``path`` in one step (the previous folder stays whole until then).

    An error, Ctrl-C or kill inside the block leaves ``path`` exactly as it was (a kill can
    leave the hidden ``.NAME.new-*`` sibling behind, never a mix of old and new files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.new-"))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_current_umask())  # mkdtemp makes 0700 folders
        fsync_tree(staging)
        _replace_directory(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_directory(new: Path, path: Path) -> None:
    """Put the folder ``new`` at ``path``; the previous ``path`` is deleted afterwards."""
    if not path.exists():
        os.rename(new, path)
    elif _exchange(new, path):
        shutil.rmtree(new)  # it now holds the previous folder
    else:  # no atomic swap on this system: the previous folder steps aside for a moment
        aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
        os.rename(path, aside / path.name)
        try:
            os.rename(new, path)
        except BaseException:
            os.rename(aside / path.name, path)
            raise
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    _fsync(path.parent)
