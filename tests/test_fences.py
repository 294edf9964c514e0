"""Where an answer's code block is: its opening fence, its tag, where it closes."""

from __future__ import annotations

from steering.code.fences import closes_code_block, cut_after_block


def test_fence_helpers():
    assert closes_code_block("```py\nx = 1\n```") and not closes_code_block("```py\nx = 1\n")
    assert cut_after_block("```py\nx\n```\nand more") == "```py\nx\n```"
