"""What one decoding step decides for each row: its next token (greedy, or drawn by the row's own
seeded generator), and whether its answer is done under the call's stop rule."""

from __future__ import annotations

import torch

from ..code.fences import closes_code_block, fence_tag, fence_written, opens_tagged_block
from ..code.languages import FENCE_ALIASES


def next_tokens(logits: torch.Tensor, config, generators: list[torch.Generator]) -> torch.Tensor:
    """Each row's next token: the highest score, or drawn at ``config.temperature`` (within the
    ``top_k``) by the row's own generator."""
    if config.greedy:
        return logits.argmax(-1)
    logits = logits.double()  # in float32 a temperature of 1e-300 is 0, and the scores inf: shift, then divide
    logits = (logits - logits.amax(-1, keepdim=True)) / config.temperature
    if config.top_k:
        kth = torch.topk(logits, min(config.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1).cpu()
    picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
    return torch.cat(picks).to(logits.device)


def finished(tok, start: str, tokens: list[int], stop: str) -> bool:
    """Whether an answer (``start`` then ``tokens``) that just grew by its last token is complete
    under rule ``stop`` (the whole answer is decoded only when that token could complete it)."""
    if stop == "none":
        return False
    last = tok.decode(tokens[-1:])
    if stop == "block":
        return "`" in last and closes_code_block(start + tok.decode(tokens, skip_special_tokens=True))
    return "\n" in last and opens_tagged_block(start + tok.decode(tokens, skip_special_tokens=True))


def wrote_fence_line(tok, start: str, tokens: list[int]) -> bool:
    """Whether the answer's last token ended a line and its fence line is written (the whole answer
    is decoded only at a line's end): where an until-the-fence steering stops."""
    return "\n" in tok.decode(tokens[-1:]) and fence_written(start + tok.decode(tokens, skip_special_tokens=True))


def row_done(tok, config, tokens: list[int], tagged: dict[int, int], row: int) -> bool:
    """``finished`` under ``config.stop``; with ``after_tag``, a row whose fence named its
    language (``after_tag_only``, if given) goes on for that many tokens of code (or until its
    block closes)."""
    if row in tagged:
        return len(tokens) - tagged[row] >= config.after_tag or finished(tok, config.start, tokens, "block")
    if not finished(tok, config.start, tokens, config.stop):
        return False
    if config.after_tag and (config.after_tag_only is None or FENCE_ALIASES.get(
            fence_tag(config.start + tok.decode(tokens, skip_special_tokens=True))) == config.after_tag_only):
        tagged[row] = len(tokens)
        return False
    return True
