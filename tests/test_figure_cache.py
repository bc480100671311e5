"""Reference figures are drawn once per code version and machine, then copied from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

import reports.figures as figures


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """A fake reference figure whose file records how often it was drawn."""
    calls: list[int] = []

    def draw(folder: Path) -> Path:
        calls.append(1)
        path = folder / "fake.png"
        path.write_bytes(f"drawing {len(calls)}".encode())
        return path

    monkeypatch.setattr(figures, "REFERENCE_FIGURES", {"fake.png": draw})
    monkeypatch.setenv("NNSPEC_CACHE_DIR", str(tmp_path / "cache"))
    return calls


def _report(tmp_path: Path, name: str) -> bytes:
    out = figures.draw_figures([], tmp_path / name)
    return out["fake.png"].read_bytes()


def test_drawn_once_then_copied(drawn: list[int], tmp_path: Path) -> None:
    assert _report(tmp_path, "a") == b"drawing 1"
    assert _report(tmp_path, "b") == b"drawing 1"
    assert len(drawn) == 1


def test_a_code_change_draws_again(
    drawn: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _report(tmp_path, "a")
    monkeypatch.setattr(figures, "figure_key", lambda: "another version")
    assert _report(tmp_path, "b") == b"drawing 2"


def test_cache_off_or_unwritable_draws_every_time(
    drawn: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NNSPEC_CACHE_DIR", "off")
    _report(tmp_path, "a")
    _report(tmp_path, "b")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NNSPEC_CACHE_DIR", str(blocker))
    assert _report(tmp_path, "c") == b"drawing 3"
    assert len(drawn) == 3


def test_key_follows_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = figures.figure_key()
    assert key == figures.figure_key()
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "k.py").write_text("x = 1\n")
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    other = figures.figure_key()
    (tmp_path / "reference" / "k.py").write_text("x = 2\n")
    assert len({key, other, figures.figure_key()}) == 3
