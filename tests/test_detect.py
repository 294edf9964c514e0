import pytest

from steering.code.detect import detect_language, extract_code, parses
from steering.code.languages import LANGUAGE_KEYS, check_language
from steering.demo_model.corpus import load_code, load_tasks

SAMPLES = {
    "python": "import math\n\ndef norm(v):\n    return math.sqrt(sum(x * x for x in v))\n",
    "cpp": "#include <vector>\n#include <cmath>\n\ndouble norm(const std::vector<double>& v) {\n    double s = 0;\n    for (double x : v) s += x * x;\n    return std::sqrt(s);\n}\n",
    "java": "public class Norm {\n    public static double norm(double[] v) {\n        double s = 0;\n        for (double x : v) s += x * x;\n        return Math.sqrt(s);\n    }\n}\n",
    "julia": "function norm2(v::Vector{Float64})\n    s = 0.0\n    for x in v\n        s += x^2\n    end\n    return sqrt(s)\nend\n",
}


@pytest.mark.parametrize("lang", LANGUAGE_KEYS)
def test_fence_tag_decides_and_grammar_checks(lang):
    d = detect_language(f"Here you go:\n```{lang}\n{SAMPLES[lang]}```\nDone.")
    assert (d.language, d.source, d.parses, d.confidence) == (lang, "fence", True, 1.0)


@pytest.mark.parametrize("lang", LANGUAGE_KEYS)
def test_bare_code_is_recognised_by_its_grammar(lang):
    d = detect_language(SAMPLES[lang])
    assert d.language == lang and d.source == "parser" and d.parses
    assert 0.25 < d.confidence <= 1.0


def test_broken_code_is_reported_as_not_parsing():
    d = detect_language("```python\ndef f(x:\n    return (x\n```")
    assert d.language == "python" and not d.parses and d.confidence < 1.0


def test_prose_is_no_language():
    d = detect_language("I am not sure how to do that, sorry.")
    assert d.language is None and not d.parses


def test_fence_aliases_and_unclosed_blocks():
    assert extract_code("```c++\nint x = 1;") == ("c++", "int x = 1;", True)
    assert detect_language("```c++\nint x = 1;").language == "cpp"
    assert check_language("JL") == "julia"
    with pytest.raises(ValueError, match="unknown language 'rust'"):
        check_language("rust")


def test_every_corpus_answer_parses_and_is_recognised_without_its_tag():
    wrong = []
    for task in load_tasks():
        for lang in LANGUAGE_KEYS:
            code = load_code(task["id"], lang)
            assert parses(code, lang), f"{task['id']}.{lang} does not parse"
            if detect_language(code).language != lang:
                wrong.append(f"{task['id']}.{lang}")
    assert len(wrong) <= 2, wrong  # bare-code detection is a fallback: near-perfect, not perfect


@pytest.mark.parametrize("text, verdict", [
    ("```cpp\n#include <vector>\nint f() { return 1; }\n```", "cpp"),
    ("// compute the sum\n", "no_code_block"),  # a bare comment parses as C++, but nothing is fenced
    ("sizesizesizesizesize", "no_code_block"),
    ("Here you go:\n```c\nint main(void) { return 0; }\n```", "other"),  # a language we do not study
    ("```cpp\nint f( {\n```", "other"),  # tagged C++ that does not parse
    ("```\n#include <cstdio>\nint main() { std::printf(\"x\"); }\n```", "cpp"),  # untagged, clearly C++
    ("```\nx\n```", "other"),  # untagged and undecided
])
def test_verdict_counts_only_fenced_clear_parsing_code(text, verdict):
    assert detect_language(text).verdict == verdict
