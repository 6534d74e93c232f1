"""Text from files and arguments made safe to print on a terminal.

A task comes from the command line or from a dataset's tasks file; an ANSI escape sequence in it
would recolour, move the cursor or retitle the user's terminal when printed, and a carriage
return would overwrite the line. Printed, such characters are shown escaped; stored, they stay.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every non-printable character (ESC, CR, BEL, bidi overrides...) as its Python
    escape, e.g. "\\x1b[31m"; letters of any script and spaces stay as they are."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text
    )
