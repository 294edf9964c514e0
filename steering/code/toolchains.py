"""Does the code compile? A parse says the grammar accepts it; a compiler also checks names,
types and includes. Checked where the toolchain is installed: ``g++ -fsyntax-only`` for C++,
``javac`` for Java, Python's own ``compile`` (what ``py_compile`` runs). Julia has no check here.
A language whose toolchain is missing gives ``None``, never a guess.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from ..core.files import atomic_write_bytes
from .languages import check_language

TIMEOUT_S = 60  # per answer; a compiler that takes longer counts as a failure
_JAVA_PUBLIC = re.compile(r"\bpublic\s+(?:final\s+|abstract\s+)*(?:class|interface|enum|record)\s+(\w+)")


def _compile_python(code: str) -> bool:
    try:
        compile(code, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _compile_cpp(code: str) -> bool:
    done = subprocess.run(["g++", "-fsyntax-only", "-std=c++17", "-x", "c++", "-"], input=code.encode(),
                          capture_output=True, timeout=TIMEOUT_S)
    return done.returncode == 0


def _compile_java(code: str) -> bool:
    match = _JAVA_PUBLIC.search(code)
    with tempfile.TemporaryDirectory(prefix="steerscope-javac-") as tmp:
        source = Path(tmp) / f"{match.group(1) if match else 'Main'}.java"
        atomic_write_bytes(source, code.encode("utf-8"))
        done = subprocess.run(["javac", "-proc:none", "-nowarn", "-d", tmp, str(source)], capture_output=True,
                              timeout=TIMEOUT_S)
    return done.returncode == 0


_CHECKS = {"python": _compile_python, "g++": _compile_cpp, "javac": _compile_java}  # by ``Language.toolchain``


def toolchain(language: str) -> str | None:
    """What checks ``language`` here (its ``Language.toolchain``), or None when nothing can."""
    program = check_language(language).toolchain
    if program is None or program == "python":  # Python's compile runs in this process
        return program
    return program if shutil.which(program) else None


def compiles(code: str, language: str) -> bool | None:
    """Whether ``code`` compiles as ``language``; None when no toolchain for it is installed."""
    if toolchain(language) is None:
        return None
    if not code.strip():
        return False
    try:
        return _CHECKS[check_language(language).toolchain](code)
    except subprocess.TimeoutExpired:
        return False


def compile_all(codes: Sequence[str], language: str, workers: int = 2) -> list[bool | None]:
    """``compiles`` for each code, ``workers`` compilers at a time."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda code: compiles(code, language), codes))
