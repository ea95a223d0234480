"""Text shown on one line: control characters written as escapes.

Copied raw, a control character would move the terminal's cursor or repaint it (an escape
sequence in a file name), or split a line or a tsv row (a carriage return, a newline, and
the Unicode line and paragraph separators, which many editors and JSON readers take as line
ends).
"""

from __future__ import annotations

#: C0, DEL and C1 as \xNN; the Unicode line and paragraph separators as \uNNNN.
ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]} | {
    code: f"\\u{code:04x}" for code in (0x2028, 0x2029)
}


def one_line(text: str) -> str:
    """``text`` with every control character escaped, so it stays one line."""
    return text.translate(ESCAPES)
