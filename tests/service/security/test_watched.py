"""watched.py: files re-read when their stat changes (a symlink swapped too), the last good value kept
when a change does not load, every reload reported, and the files looked at no more often than asked."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from service.security.watched import WatchedFiles


class Unreadable(Exception):
    pass


def _loader(path: Path) -> Callable[[], str]:
    def load() -> str:
        text = path.read_text()
        if text.startswith("bad"):
            raise Unreadable(text)
        return text

    return load


def test_a_change_that_loads_replaces_the_value_and_one_that_does_not_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "policy"
    path.write_text("v1")
    reloads: list[bool] = []
    files = WatchedFiles([str(path)], _loader(path), refused=Unreadable, on_reload=reloads.append)
    assert files.value == "v1"
    assert files.refresh() is None  # nothing changed
    path.write_text("v2 longer")
    assert files.refresh() == ("v1", "v2 longer")
    path.write_text("bad, and longer still")
    refused = files.refresh()
    assert isinstance(refused, Unreadable)
    assert files.value == "v2 longer"
    assert files.refresh() is None  # a refused change is reported once
    assert reloads == [True, False]


def test_a_swapped_symlink_is_a_change_as_kubernetes_makes_it(tmp_path: Path) -> None:
    for version in ("a", "b"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "file").write_text(version)
    (tmp_path / "..data").symlink_to("a")
    path = tmp_path / "file"
    path.symlink_to("..data/file")
    files = WatchedFiles([str(path)], _loader(path), refused=Unreadable)
    (tmp_path / "..data_tmp").symlink_to("b")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # the kubelet's atomic swap
    assert files.refresh() == ("a", "b")


def test_files_that_do_not_load_at_start_stop_it(tmp_path: Path) -> None:
    path = tmp_path / "policy"
    path.write_text("bad")
    with pytest.raises(Unreadable):
        WatchedFiles([str(path)], _loader(path), refused=Unreadable)


def test_within_the_interval_the_files_are_not_looked_at(tmp_path: Path) -> None:
    path = tmp_path / "policy"
    path.write_text("v1")
    files = WatchedFiles([str(path)], _loader(path), refused=Unreadable, check_interval_seconds=3600)
    path.write_text("v2 longer")
    assert files.refresh() is None
    assert files.value == "v1"
