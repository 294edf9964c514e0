"""``Language``: a target is checked once into a value that carries its aliases, toolchain and grammar."""

from __future__ import annotations

import json
import pickle
from importlib import import_module

import pytest

from steering.code.languages import FENCE_ALIASES, LANGUAGE_KEYS, LANGUAGES, Language, check_language
from steering.code.toolchains import toolchain
from steering.pipeline.settings import PipelineSettings


def test_a_language_is_its_key_where_keys_are_stored():
    cpp = check_language(" C++ ")
    assert isinstance(cpp, Language) and cpp == "cpp" and cpp.key == "cpp"
    assert {"cpp": 1}[cpp] == 1 and json.dumps({cpp: cpp}) == '{"cpp": "cpp"}'
    assert pickle.loads(pickle.dumps(cpp)) is cpp  # to a worker process and back: the same value


def test_every_alias_names_one_language_and_every_grammar_loads():
    assert set(LANGUAGE_KEYS) == set(LANGUAGES) == {"python", "cpp", "java", "julia"}
    for lang in LANGUAGE_KEYS:
        assert lang in lang.aliases and all(FENCE_ALIASES[a] is lang for a in lang.aliases)
        assert callable(import_module(lang.grammar).language)
    assert FENCE_ALIASES["jl"] is LANGUAGES["julia"] and FENCE_ALIASES["py"] is LANGUAGES["python"]


def test_the_toolchain_is_the_language_s_own():
    assert LANGUAGES["julia"].toolchain is None and toolchain("julia") is None
    assert toolchain("py") == "python"  # Python's compile needs nothing installed


def test_checked_once_then_passed_through():
    java = check_language("java")
    assert check_language(java) is java  # a value that already is one is not looked up again
    with pytest.raises(ValueError, match=r"unknown language 'rust'; expected one of python, cpp, java, julia"):
        check_language("rust")
    with pytest.raises(AttributeError, match="immutable"):
        java.display = "Kotlin"


def test_settings_hold_the_value_and_save_the_key():
    s = PipelineSettings(target="C++", contrast="py")
    assert s.target is LANGUAGES["cpp"] and s.contrast is LANGUAGES["python"]
    assert json.loads(json.dumps(s.to_json()))["target"] == "cpp"
    assert PipelineSettings.from_json(s.to_json()).target is LANGUAGES["cpp"]
