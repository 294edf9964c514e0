"""The four programming languages Steerscope studies, and how each one is named and drawn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    key: str  # the fence tag and the key used everywhere in files and tables
    display: str  # how prompts and plots name it
    extension: str
    comment: str  # full-line comment marker
    color: str  # one colour per language, the same on every page


LANGUAGES: dict[str, Language] = {
    lang.key: lang
    for lang in (
        Language("python", "Python", "py", "#", "#3572A5"),
        Language("cpp", "C++", "cpp", "//", "#f34b7d"),
        Language("java", "Java", "java", "//", "#b07219"),
        Language("julia", "Julia", "jl", "#", "#9558B2"),
    )
}
LANGUAGE_KEYS: tuple[str, ...] = tuple(LANGUAGES)

# Fence tags other tools write for the same languages.
FENCE_ALIASES: dict[str, str] = {
    "python": "python", "py": "python", "python3": "python",
    "cpp": "cpp", "c++": "cpp", "cxx": "cpp", "cc": "cpp",
    "java": "java",
    "julia": "julia", "jl": "julia",
}


def check_language(key: str) -> str:
    """Return ``key`` normalised, or raise a ValueError that lists the known languages."""
    norm = FENCE_ALIASES.get(str(key).strip().lower())
    if norm is None:
        raise ValueError(f"unknown language {key!r}; expected one of {', '.join(LANGUAGE_KEYS)}")
    return norm
