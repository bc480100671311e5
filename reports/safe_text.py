"""Record text made safe to show: control characters made visible, very long strings cut.

Records and manifests come from adapters and machines we do not control. An ESC sequence in an
adapter name would recolour (or rewrite) the terminal that prints the console summary, a NUL
or lone surrogate makes HTML invalid or the UTF-8 writer fail, and a 10,000-character message
makes every table unreadable. The renderers (Markdown, HTML, console) pass record text through
shown(); summary.json keeps the full, unmodified text.
"""

from __future__ import annotations

import re

# Longer strings are cut in the rendered outputs (summary.json keeps them whole).
LIMIT = 500

# C0 controls except \t and \n, DEL and the C1 controls (\x9b is a one-byte CSI on some
# terminals), the bidirectional overrides/isolates that can make shown text read differently
# from what it is, the Unicode line/paragraph separators, and lone surrogates (not encodable
# as UTF-8).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """text with every control character replaced by its escape, e.g. ESC -> '\\x1b'."""
    return _INVISIBLE.sub(_escape, text)


def shorten(text: str, limit: int = LIMIT) -> str:
    """text cut to limit characters, with a marker saying how long it was (ASCII, so that the
    marker itself never trips a console that cannot print Unicode)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated: {len(text)} characters in all]"


def shown(text: str, limit: int = LIMIT) -> str:
    """What a renderer shows of a record string: cut first, so an escape is never split."""
    return visible(shorten(text, limit))
