"""Compile checks: g++ and javac where installed, Python's own compile, none for Julia."""

from __future__ import annotations

import shutil

import pytest

from conftest import CPP_OK, CPP_UNDECLARED
from steering.code.toolchains import compiles, toolchain


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed: the C++ compile check is skipped")
def test_cpp_compile_check_catches_what_a_parse_accepts():
    assert toolchain("cpp") == "g++"
    assert compiles(CPP_OK, "cpp") is True
    assert compiles(CPP_UNDECLARED, "cpp") is False
    assert compiles("", "cpp") is False


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac is not installed: the Java compile check is skipped")
def test_java_compile_check_names_the_file_after_its_public_class():
    assert compiles("public class Solver { static int f() { return 1; } }", "java") is True
    assert compiles("class A { int f() { return g(); } }", "java") is False


def test_python_compiles_in_process_and_julia_has_no_check():
    assert compiles("def f(x):\n    return x\n", "python") is True
    assert compiles("def f(x:\n", "python") is False
    assert toolchain("julia") is None and compiles("f(x) = x", "julia") is None
