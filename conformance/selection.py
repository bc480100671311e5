"""Which checks run, and how: stable check ids, --stems/--dtypes/--devices, --shard K/N, and the
implementer's own --xfails/--skips files."""

from __future__ import annotations

import fnmatch
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path


def check_id(stem: str, prop: str, dtype: str) -> str:
    """`<stem>/<property>/<dtype>`: independent of pytest node ids and Hypothesis examples."""
    return f"{stem}/{prop}/{dtype}"


def csv(value: str | None) -> set[str] | None:
    return None if not value else {v.strip() for v in value.split(",") if v.strip()}


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"--shard {value!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic split (CRC32 of adapter + check id): the same on every machine, so N
    machines running K=1..N cover every check exactly once."""
    if shard is None:
        return True
    k, n = shard
    return zlib.crc32(key.encode()) % n == k - 1


@dataclass
class PatternFile:
    """One check-id glob per line (`#` starts a comment); an optional `adapter:` prefix limits a
    line to one adapter, e.g. `mylib:attention/*/bfloat16  # no bf16 kernels yet`."""

    path: Path
    lines: list[tuple[int, str | None, str, str]] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    @classmethod
    def read(cls, path: str) -> PatternFile:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"{path}: no such file")
        result = cls(p)
        for lineno, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            text, _, comment = raw.partition("#")
            text = text.strip()
            if not text:
                continue
            adapter, sep, pattern = text.rpartition(":")
            result.lines.append((lineno, adapter if sep else None, pattern, comment.strip()))
        return result

    def match(self, adapter: str, cid: str) -> str | None:
        """The reason (the line's comment, or the line itself) of the first matching line."""
        for lineno, only, pattern, comment in self.lines:
            if (only is None or only == adapter) and fnmatch.fnmatchcase(cid, pattern):
                self.used.add(lineno)
                return comment or f"{self.path.name}:{lineno}"
        return None

    def unused(self) -> list[str]:
        return [
            f"{self.path}:{lineno}: {'' if only is None else only + ':'}{pattern} matches no check"
            for lineno, only, pattern, _ in self.lines
            if lineno not in self.used
        ]
