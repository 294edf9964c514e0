"""One line for any error, the same on every interface (the CLI's boundary, the dashboard's):
plain text, one line, capped in length, and, where a browser shows it, without server paths."""

from __future__ import annotations

import re
from pathlib import PurePath

MAX_ERROR_CHARS = 400  # a 20 MB model name in a file is not echoed whole
_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/]+/)*[^\s'\"/]*")  # an absolute path inside a message


def one_line(err: BaseException, hide_paths: bool = False) -> str:
    """``err`` as one line of at most ``MAX_ERROR_CHARS`` characters; with ``hide_paths``, each
    absolute path shown by its last name only (what a browser may see of the server)."""
    message = " ".join(str(err).split()) or type(err).__name__  # one line, however many-lined the cause
    if isinstance(err, RecursionError):
        message = "the input is nested too deeply to read"
    if hide_paths:
        message = _PATH.sub(lambda m: PurePath(m.group()).name or "/", message)
    if len(message) > MAX_ERROR_CHARS:
        message = f"{message[:MAX_ERROR_CHARS]}… ({len(message) - MAX_ERROR_CHARS} more characters)"
    return message
