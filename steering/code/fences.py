"""Where an answer's code block is: its opening fence, the language its fence line names, and
where it closes. Generation stops by these, and the selection and evaluation cut by them."""


def _fence_line(text: str) -> tuple[int, int]:
    """Where the first fence starts and where its line ends (-1 for what is not there yet)."""
    start = text.find("```")
    return start, (text.find("\n", start) if start >= 0 else -1)


def from_fence(text: str) -> str:
    """``text`` from its first fence on (empty without one): the code block, without prose before it."""
    start = _fence_line(text)[0]
    return text[start:] if start >= 0 else ""


def _closing_fence(text: str) -> int:
    """Index of the fence that closes the first code block, or -1."""
    _, line_end = _fence_line(text)
    return text.find("```", line_end + 1) if line_end >= 0 else -1


def opens_tagged_block(text: str) -> bool:
    """True once ``text`` holds an opening fence whose line names a language (and has ended)."""
    start, line_end = _fence_line(text)
    return line_end >= 0 and bool(text[start + 3 : line_end].strip())


def fence_tag(text: str) -> str:
    """The first fence's tag as written, in lower case ("" until its line has ended, or untagged)."""
    start, line_end = _fence_line(text)
    return text[start + 3 : line_end].strip().lower() if line_end >= 0 else ""


def closes_code_block(text: str) -> bool:
    """True once ``text`` holds an opening fence and a later closing one."""
    return _closing_fence(text) >= 0


def cut_after_block(text: str) -> str:
    close = _closing_fence(text)
    return (text[: close + 3] if close >= 0 else text).strip()


def fence_written(text: str) -> bool:
    """True once ``text`` holds an opening fence whose line has ended (tagged or not)."""
    return _fence_line(text)[1] >= 0
