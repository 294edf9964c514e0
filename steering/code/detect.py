"""Which language is this answer written in, and does it parse?

The fence tag is the model's own claim and is read first; the tree-sitter grammars of the four
languages check it, and decide when there is no tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module

from tree_sitter import Language as TSLanguage
from tree_sitter import Node, Parser

from .languages import FENCE_ALIASES, LANGUAGE_KEYS, LANGUAGES

# Words that only one of the four languages uses; they break ties between clean parses.
_CUES = {
    "python": re.compile(r"^\s*(def|import|from)\s|:\s*$", re.M),
    "cpp": re.compile(r"#include|std::|\bconst\s+\w+&"),
    "java": re.compile(r"\bpublic\s+(static\s+)?\w|\bclass\s+\w+\s*\{"),
    "julia": re.compile(r"^\s*(function|end)\b|::\w+", re.M),
}
# An opening fence, its tag, and the code up to the closing fence (or the end: an answer may be
# cut off, or stopped right after its fence line).
CLEAR = 0.6  # least parser confidence that decides an untagged block's language
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*(?:\n(.*?)(?:\n?```|\Z)|\Z)", re.S)


@dataclass(frozen=True)
class Detection:
    language: str | None  # one of LANGUAGE_KEYS, or None when nothing fits
    confidence: float  # 0..1
    parses: bool  # the code parses without errors in ``language``'s grammar
    source: str  # "fence", "parser" or "none": what decided the language
    code: str  # the code that was checked (the first fenced block, else the whole text)
    fenced: bool = False  # the answer holds a fenced code block (instruct models may answer in prose)
    tag: str = ""  # the fence's tag as written ("" when untagged or unfenced)

    @property
    def clear(self) -> bool:
        """The language is decided: by the fence tag, or (untagged) by a clean parse that the
        grammars do not share evenly with another language."""
        return self.language is not None and (self.source == "fence" or (self.parses and self.confidence >= CLEAR))

    @property
    def verdict(self) -> str:
        """What the answer counts as, for the honest success metric: a language only when a fenced
        block is clearly in it and parses; otherwise ``"no_code_block"`` (nothing fenced) or
        ``"other"`` (another language's tag, unclear or unparsable code)."""
        if not self.fenced:
            return "no_code_block"
        return self.language if self.clear and self.parses else "other"


@lru_cache(maxsize=None)
def _parser(language: str) -> Parser:
    return Parser(TSLanguage(import_module(LANGUAGES[language].grammar).language()))


def _error_bytes(node: Node) -> int:
    if node.is_error or node.is_missing:
        return max(1, node.end_byte - node.start_byte)
    if not node.has_error:
        return 0
    return sum(_error_bytes(child) for child in node.children)


def clean_fraction(code: str, language: str) -> float:
    """Share of the code's bytes that ``language``'s grammar parses without error (1.0 = clean)."""
    data = code.encode("utf-8")
    if not data.strip():
        return 0.0
    tree = _parser(language).parse(data)
    return 1.0 - min(1.0, _error_bytes(tree.root_node) / len(data))


def parses(code: str, language: str) -> bool:
    """Whether ``code`` is non-empty and free of syntax errors in ``language``."""
    return bool(code.strip()) and not _parser(language).parse(code.encode("utf-8")).root_node.has_error


def extract_code(text: str) -> tuple[str, str, bool]:
    """The first fenced block's tag as written (lower case, "" when untagged), its code, and
    whether there was a fence; unfenced text is all code."""
    match = _FENCE.search(text)
    if match is None:
        return "", text, False
    return match.group(1).lower(), match.group(2) or "", True


def detect_language(text: str) -> Detection:
    """Detect the language of a model's answer (fenced or bare code)."""
    raw, code, fenced = extract_code(text)
    tag = FENCE_ALIASES.get(raw)
    if raw and tag is None:  # tagged with a language Steerscope does not study (c, csharp, ...)
        return Detection(None, 1.0, False, "fence", code, fenced, raw)
    if not code.strip():
        return Detection(tag, 0.5 if tag else 0.0, False, "fence" if tag else "none", code, fenced, raw)
    if tag is not None:
        ok = parses(code, tag)
        return Detection(tag, 1.0 if ok else 0.8, ok, "fence", code, fenced, raw)
    clean = {lang: clean_fraction(code, lang) for lang in LANGUAGE_KEYS}
    cued = {lang for lang in LANGUAGE_KEYS if _CUES[lang].search(code)}
    # Prose half-parses in forgiving grammars: a candidate needs a clean parse or a cue.
    scores = {
        lang: clean[lang] + (0.5 if lang in cued else 0.0)
        for lang in LANGUAGE_KEYS
        if clean[lang] == 1.0 or lang in cued
    }
    if not scores:
        return Detection(None, 0.0, False, "none", code, fenced, raw)
    best = max(scores, key=scores.get)
    confidence = clean[best] * scores[best] / sum(scores.values())
    return Detection(best, round(confidence, 3), clean[best] == 1.0, "parser", code, fenced, raw)
