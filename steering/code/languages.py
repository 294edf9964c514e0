"""The four programming languages Steerscope studies: one ``Language`` value each, validated once.

A ``Language`` is the key itself (``"cpp"``: a ``str``, so it is stored, compared and used as a
dictionary key as before) carrying everything known about it: how prompts and plots name it, the
fence tags other tools write for it, the program that checks that its code compiles, and its
tree-sitter grammar. ``check_language`` turns user input into one; a value that already is one
passes through unchecked, so a target is checked where it enters and nowhere after.
"""

from __future__ import annotations


class Language(str):
    """One language: the key (``str(language)``) and what is known about it; immutable."""

    display: str  # how prompts and plots name it
    extension: str
    comment: str  # full-line comment marker
    color: str  # one colour per language, the same on every page
    aliases: tuple[str, ...]  # fence tags other tools write for it (the key is one)
    toolchain: str | None  # what checks that its code compiles (``toolchains``): "python", "g++", "javac"; None: nothing
    grammar: str  # the tree-sitter grammar's Python module (``detect``)

    def __new__(cls, key: str, display: str, extension: str, comment: str, color: str, aliases: tuple[str, ...],
                toolchain: str | None, grammar: str):
        self = super().__new__(cls, key)
        fields = dict(display=display, extension=extension, comment=comment, color=color,
                      aliases=(key, *aliases), toolchain=toolchain, grammar=grammar)
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        return self

    def __setattr__(self, name, value):
        raise AttributeError(f"a Language is immutable; {name!r} cannot be set")

    @property
    def key(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Language({str(self)!r})"

    def __reduce__(self):  # to a worker process as its key, checked back into the same value
        return check_language, (str(self),)


LANGUAGES: dict[str, Language] = {
    lang: lang
    for lang in (
        Language("python", "Python", "py", "#", "#3572A5", ("py", "python3"), "python", "tree_sitter_python"),
        Language("cpp", "C++", "cpp", "//", "#f34b7d", ("c++", "cxx", "cc"), "g++", "tree_sitter_cpp"),
        Language("java", "Java", "java", "//", "#b07219", (), "javac", "tree_sitter_java"),
        Language("julia", "Julia", "jl", "#", "#9558B2", ("jl",), None, "tree_sitter_julia"),
    )
}
LANGUAGE_KEYS: tuple[Language, ...] = tuple(LANGUAGES.values())
FENCE_ALIASES: dict[str, Language] = {alias: lang for lang in LANGUAGE_KEYS for alias in lang.aliases}


def check_language(key: str) -> Language:
    """``key`` (a language's key or one of its fence tags, any case) as its ``Language``, or a
    ValueError that lists the known languages."""
    if isinstance(key, Language):
        return key
    norm = FENCE_ALIASES.get(str(key).strip().lower())
    if norm is None:
        raise ValueError(f"unknown language {key!r}; expected one of {', '.join(LANGUAGE_KEYS)}")
    return norm
