"""The console's prompt: readline line editing and history, and Ctrl-C as a key.

Python's readline notices a SIGINT only while it waits for a key: one that
arrives while readline is busy with the previous key is seen at the next key,
so a quick Ctrl-C (a fast typist's, a test's) would seem to do nothing. While
the prompt waits, the terminal's interrupt character is therefore switched off
and readline gets Ctrl-C as a key, bound to "drop the line": it goes to the
kill ring (Ctrl-Y brings it back) and an empty line is accepted, which the
console skips. Ctrl-Z and Ctrl-\\ keep their meaning, and outside the prompt
(while the bot works) Ctrl-C is SIGINT again.
"""

from __future__ import annotations

import os
import sys

#: Ctrl-C at the prompt: start of line, kill to the end, accept the (now empty) line.
CTRL_C_BINDING = r'"\C-c": "\C-a\C-k\C-j"'


def enable_line_editing() -> bool:
    """Import readline (that is what gives ``input()`` editing and history); bind Ctrl-C.

    ``False`` when Ctrl-C stays a signal: no readline, or libedit (macOS), whose
    binding syntax differs.
    """
    try:
        import readline
    except ImportError:
        return False
    if "libedit" in (readline.__doc__ or ""):
        return False
    readline.parse_and_bind(CTRL_C_BINDING)
    return True


def read_line(prompt: str, *, ctrl_c_as_key: bool) -> str:
    """``input(prompt)``, with the terminal's interrupt character off meanwhile if asked."""
    if not ctrl_c_as_key or not sys.stdin.isatty():
        return input(prompt)
    import termios

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    changed = [*saved[:6], list(saved[6])]
    disabled = os.fpathconf(fd, "PC_VDISABLE")
    changed[6][termios.VINTR] = bytes([disabled if 0 <= disabled < 256 else 0])
    termios.tcsetattr(fd, termios.TCSANOW, changed)
    try:
        return input(prompt)
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
