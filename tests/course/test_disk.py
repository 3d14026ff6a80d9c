import shutil

import pytest

from peel_course import disk


def test_needed_bytes_by_platform():
    assert disk.needed_bytes("Linux", "x86_64") == 7 * disk.GIB
    assert disk.needed_bytes("Linux", "aarch64") == 2 * disk.GIB
    assert disk.needed_bytes("Darwin", "arm64") == 2 * disk.GIB


def test_enough_space_returns_the_free_bytes(tmp_path):
    free = disk.check_free_space(tmp_path / "not" / "yet" / ".venv", need=1)
    assert free == pytest.approx(shutil.disk_usage(tmp_path).free, rel=0.01)


def test_too_little_space_is_our_error_naming_the_fixes(tmp_path):
    with pytest.raises(SystemExit, match=r"GiB free on the disk of .*VENV=.*whl/cpu"):
        disk.check_free_space(tmp_path / ".venv", need=shutil.disk_usage(tmp_path).free * 2)
