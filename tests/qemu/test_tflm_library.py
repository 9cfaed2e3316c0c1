"""Finding a TFLM source tree and choosing what of it to compile (no compiler needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinykd.errors import TinyKDError
from tinykd.firmware.tflm_library import HOST_TREE_ENV, TFLM_DIR_ENV, find_tflm_tree


def make_tree(root: Path, *, cmsis_nn: bool) -> Path:
    """A skeleton of what create_tflm_tree.py writes (file contents do not matter here)."""
    files = [
        "tensorflow/lite/micro/micro_interpreter.h",
        "tensorflow/lite/micro/micro_interpreter.cc",
        "tensorflow/lite/micro/kernels/fully_connected_common.cc",
        "tensorflow/lite/micro/cortex_m_generic/micro_time.cc",
        "tensorflow/lite/micro/cortex_m_generic/debug_log.cc",
        "tensorflow/lite/micro/test_helpers.cc",
        "signal/src/window.cc",
        "third_party/kissfft/kiss_fft.c",
        "third_party/flatbuffers/include/flatbuffers/flatbuffers.h",
        "third_party/gemmlowp/fixedpoint/fixedpoint.h",
    ]
    if cmsis_nn:
        files += [
            "tensorflow/lite/micro/kernels/cmsis_nn/fully_connected.cc",
            "third_party/cmsis_nn/Source/FullyConnectedFunctions/arm_fully_connected_s8.c",
            "third_party/cmsis_nn/Include/arm_nnfunctions.h",
            "third_party/cmsis/CMSIS/Core/Include/cmsis_compiler.h",
        ]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("// test\n")
    return root


def test_no_tree_configured_says_what_is_needed(monkeypatch):
    monkeypatch.delenv(TFLM_DIR_ENV, raising=False)
    monkeypatch.delenv(HOST_TREE_ENV, raising=False)
    with pytest.raises(TinyKDError) as error:
        find_tflm_tree()
    message = str(error.value)
    assert "TFLM_DIR" in message and "tflm_dir" in message
    assert "create_tflm_tree.py" in message and "OPTIMIZED_KERNEL_DIR=cmsis_nn" in message


def test_a_folder_that_is_not_a_tree_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(TFLM_DIR_ENV, str(tmp_path))
    with pytest.raises(TinyKDError, match="is not a TFLM source tree"):
        find_tflm_tree()


def test_config_key_wins_over_environment(tmp_path, monkeypatch):
    tree_dir = make_tree(tmp_path / "tree", cmsis_nn=False)
    monkeypatch.setenv(TFLM_DIR_ENV, str(tmp_path / "elsewhere"))
    assert find_tflm_tree(tree_dir).root == tree_dir.resolve()


def test_reference_tree_sources_and_flags(tmp_path):
    tree = find_tflm_tree(make_tree(tmp_path, cmsis_nn=False))
    assert tree.kernels == "reference"
    names = [p.relative_to(tree.root).as_posix() for p in tree.library_sources()]
    assert names == [
        "tensorflow/lite/micro/cortex_m_generic/debug_log.cc",
        "tensorflow/lite/micro/kernels/fully_connected_common.cc",
        "tensorflow/lite/micro/micro_interpreter.cc",
    ]
    flags = tree.application_flags()
    assert "-DTF_LITE_STATIC_MEMORY" in flags and "-DCMSIS_NN" not in flags
    assert f"-I{tree.root / 'third_party/flatbuffers/include'}" in flags


def test_cmsis_nn_tree_compiles_its_kernels_fast_and_defines_cmsis_nn(tmp_path):
    tree = find_tflm_tree(make_tree(tmp_path, cmsis_nn=True))
    assert tree.kernels == "cmsis_nn"
    assert "-DCMSIS_NN" in tree.application_flags()
    by_name = {p.name: tree.optimization(p) for p in tree.library_sources()}
    assert by_name == {
        "debug_log.cc": "-Os",
        "fully_connected_common.cc": "-O2",
        "fully_connected.cc": "-O2",
        "micro_interpreter.cc": "-Os",
        "arm_fully_connected_s8.c": "-O2",
    }


def test_content_hash_follows_the_sources(tmp_path):
    tree = find_tflm_tree(make_tree(tmp_path, cmsis_nn=False))
    before = tree.content_hash()
    assert tree.content_hash() == before
    (tree.root / "tensorflow/lite/micro/micro_interpreter.cc").write_text("// changed\n")
    assert tree.content_hash() != before
