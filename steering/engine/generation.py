"""Answer coding prompts with a loaded model: greedy or seeded sampling, batched, KV-cached,
stopping at the end of the first code block, wherever it starts.

The loop runs the Hugging Face model directly (``forward``), with hooks only where a call asks for
them, so it costs what ``transformers``' own ``generate`` costs. It is ours rather than
``generate``'s because every call must own its KV cache and its random generators (one per
prompt, seeded), so that concurrent calls (steered and not) cannot disturb each other and an
answer does not depend on the batch it was in.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from ..code.detect import Detection, detect_language
from ..code.fences import cut_after_block, fence_written
from ..code.languages import LANGUAGE_KEYS
from ..core.limits import check as check_limit
from ..core.progress import beat
from ..core.schedules import StepControl
from .decoding import next_tokens, row_done, wrote_fence_line
from .forward import encode_prompts, forward, positions_of, prompt_cache
from .hooks import HookFn, hooks_attached, thread_hooks

# The Ray replicas this thread's ``generate`` calls decode on (None: here): ``parallel.workers``
# hands its pool in through ``decoding_on``, so this loop never imports what runs above it.
_POOL: ContextVar = ContextVar("decoding_pool", default=None)


@contextmanager
def decoding_on(pool):
    """Inside the block, this thread's ``generate`` calls decode on ``pool`` (``parallel.Pool``)."""
    token = _POOL.set(pool)
    try:
        yield pool
    finally:
        _POOL.reset(token)

STOP_RULES = ("block", "tag", "none")
REPEAT_ROWS = 4  # a batch holds at most this many times batch_size rows (copies of its prompts)
# Added to every prompt of a chat model other than the embedded one (``LoadedModel.instruction``):
# instruct models otherwise open with prose ("Certainly! Gauss-Seidel is...") before any code.
CODE_BLOCK_INSTRUCTION = "Answer with one fenced code block that holds the complete code, and nothing else."


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 320
    temperature: float = 0.0  # 0 means greedy
    top_k: int | None = None
    seed: int = 0  # prompt i of a call samples with seed + i, whatever the batch size
    batch_size: int = 16  # different prompts per batch (copies of a prompt ride along: see _batches)
    stop: str = "block"  # "block": once the first code block closes; "tag": once a fence names its language; "none"
    start: str = ""  # text every answer is forced to begin with (e.g. "```": the answer opens a code block)
    after_tag: int = 0  # with stop "tag": tokens of code decoded after the fence's line (or until the block closes)
    after_tag_only: str | None = None  # with after_tag: only a fence naming this language goes on; others end at their tag

    def __post_init__(self):
        if not (isinstance(self.max_new_tokens, int) and self.max_new_tokens > 0):
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if self.top_k is not None and not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise ValueError(f"top_k must be None or an integer >= 0 (0: no cut), got {self.top_k!r}")
        check_limit("seed", self.seed, "seed")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size!r}")
        if self.stop not in STOP_RULES:
            raise ValueError(f"unknown stop rule {self.stop!r}; expected one of {', '.join(STOP_RULES)}")
        if not (isinstance(self.after_tag, int) and self.after_tag >= 0):
            raise ValueError(f"after_tag must be an integer >= 0, got {self.after_tag!r}")
        if self.after_tag and self.stop != "tag":
            raise ValueError(f"after_tag counts tokens after the fence's tag, which only stop 'tag' waits for; got stop {self.stop!r}")
        if self.after_tag_only is not None and self.after_tag_only not in LANGUAGE_KEYS:
            raise ValueError(f"after_tag_only must be one of {', '.join(LANGUAGE_KEYS)}, got {self.after_tag_only!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    prompt: str
    text: str  # the answer, cut after its first closed code block
    n_tokens: int
    seed: int
    tokens: list[int] | None = field(default=None, repr=False, compare=False)  # the generated ids (not stored)
    stop_reason: str | None = None  # why the answer ended before its stop rule or budget ended it
    detection: Detection = field(init=False)

    def __post_init__(self):
        self.detection = detect_language(self.text)


@torch.no_grad()
def decode_batch(model, prompts, seeds, config, on_token=None, on_answers=None, steerer=None, steered_rows=None,
                 forks=None) -> list[Generation]:
    """Greedy or sampled answers to one batch. Each different prompt runs its prompt pass once,
    up to its last token, whatever its copies (the bias stage samples each prompt several times)
    and however they are steered (steering acts from the last prompt token on): only the last
    token runs once per different row, with the steering attached (with hooks attached by the
    caller, or a steering of the prompt itself, the whole prompt runs per row). Rows that finish leave the batch, so
    the last long answer does not pay for the finished ones. ``steerer`` steers on its schedule,
    which this loop drives (``schedules.StepControl``), the rows ``steered_rows`` marks (default:
    all), so that steered and unsteered answers can share a batch. A tuple of steerers steers row
    i by ``steerer[steered_rows[i]]`` (None: not at all; ``generate_each``). ``forks`` maps a row
    to the row it is the same as until that row's fence line (``generate_each``): it joins the
    batch only there."""
    parts = [] if steerer is None else (
        [(one, [g == k for g in steered_rows]) for k, one in enumerate(steerer) if one is not None]
        if isinstance(steerer, tuple) else [(steerer, steered_rows)])
    texts = list(dict.fromkeys(prompts))
    ids, mask = encode_prompts(model, texts, config.start)
    prefix = None
    if not hooks_attached() and all(one.spec.positions == "generated" for one, _ in parts) and bool((mask[:, :-1].sum(-1) > 0).all()):
        prefix = prompt_cache(model, ids[:, :-1], mask[:, :-1])  # unsteered, before any hook
    prompt_pass = (texts, ids, mask, prefix)
    forks = {} if not forks or fence_written(config.start) else dict(forks)
    if not parts:
        return _decode(model, prompts, seeds, config, on_token, on_answers, [], prompt_pass, forks)
    controls = [(StepControl(len(prompts), None if rows is None else torch.tensor(rows, dtype=torch.bool)),
                 one.spec.schedule == "fence") for one, rows in parts]
    hooks = [h for (one, _), (control, _) in zip(parts, controls) for h in one.hooks(model, control=control)]
    with thread_hooks(model, hooks):
        return _decode(model, prompts, seeds, config, on_token, on_answers, controls, prompt_pass, forks)


def _decode(model, prompts, seeds, config, on_token, on_answers, controls, prompt_pass, forks) -> list[Generation]:
    tok = model.tokenizer
    # Rows are shared when their prompt and how they are steered are the same; a fork waits for its lead's fence.
    keys = [(p, *(bool(c.steered[i]) for c, _ in controls)) for i, p in enumerate(prompts)]
    alive = [i for i in range(len(prompts)) if i not in forks]  # the batch's rows, by their index in ``prompts``
    unique = {key: i for i, key in enumerate(dict.fromkeys(keys[i] for i in alive))}
    texts, ids, mask, prefix = prompt_pass
    of_text = torch.tensor([texts.index(key[0]) for key in unique], device=ids.device)
    ids, mask = ids[of_text], mask[of_text]
    budget = min(config.max_new_tokens, model.facts.n_ctx - ids.shape[1])
    first_rows = torch.tensor([keys.index(k) for k in unique])  # the prompt pass runs each different row once
    for control, until_fence in controls:
        if until_fence and fence_written(config.start):
            control.steered[:] = False  # the forced opening already wrote the fence line
        control.alive = first_rows
    if prefix is None:
        logits, cache = forward(model, ids, mask, positions_of(mask))
    else:  # each different row: its prompt's shared prefix, then its last token, steered as that row is
        prefix.batch_select_indices(of_text)
        logits, cache = forward(model, ids[:, -1:], mask, positions_of(mask)[:, -1:], prefix)
    rows = torch.tensor([unique[keys[i]] for i in alive], device=ids.device)
    if len(unique) < len(alive):
        cache.batch_select_indices(rows)
    logits, mask = logits[rows], mask[rows]
    positions = positions_of(mask)[:, -1:]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    stop_ids = {t for t in (tok.eos_token_id, getattr(tok, "pad_token_id", None)) if t is not None}
    out: list[list[int]] = [[] for _ in prompts]
    tagged: dict[int, int] = {}  # with ``after_tag``: row -> its length when its fence's tag line ended
    stopped: dict[int, str] = {}  # row -> why it stopped early
    fenced = [control for control, until_fence in controls if until_fence]
    credited = dict.fromkeys(range(len(prompts)), 0.0)  # row -> the share of an answer reported to ``on_answers`` so far
    waiting: dict[int, list[int]] = {}  # lead row -> the rows forking from it at its fence line
    for fork, lead in forks.items():
        waiting.setdefault(lead, []).append(fork)

    def join(lead: int) -> list[int]:
        """The rows waiting on ``lead``, now the same answer so far (tokens, state, generator)."""
        for fork in waiting.get(lead, []):
            out[fork] = list(out[lead])
            for state in (tagged, stopped):
                if lead in state:
                    state[fork] = state[lead]
            generators[fork].set_state(generators[lead].get_state())
        return waiting.pop(lead, [])

    for _step in range(budget):
        bad = ~torch.isfinite(logits).all(-1)
        logits, broken = logits.masked_fill(bad[:, None], 0.0), bad.tolist()  # broken rows are sampled, then dropped
        next_ids = next_tokens(logits, config, [generators[i] for i in alive])
        keep = []
        for row, (i, token) in enumerate(zip(alive, next_ids.tolist())):
            if broken[row]:
                stopped[i] = (f"stopped after {len(out[i])} tokens: the model's next-token scores became NaN or infinite "
                              "(steering too strong for this model, or broken weights or vectors)")
                continue
            if token in stop_ids:
                continue
            out[i].append(token)
            if any(c.steered[i] for c in fenced) and wrote_fence_line(tok, config.start, out[i]):
                for control in fenced:
                    control.steered[i] = False
            if not row_done(tok, config, out[i], tagged, i):
                keep.append(row)
        added = _credit(credited, alive, {alive[row] for row in keep}, budget)
        forked, kept = [], set(keep)  # (fork row, the pass row it copies)
        for row, i in enumerate(alive):
            if i in waiting and (row not in kept or wrote_fence_line(tok, config.start, out[i])):
                for fork in join(i):  # the lead ended (so do they) or wrote its fence line (they go on, unsteered)
                    credited[fork] = credited[i] if row in kept else 1.0
                    added += credited[fork]
                    if row in kept:
                        forked.append((fork, row))
                        for control in fenced:
                            control.steered[fork] = False
        if on_token is not None:
            on_token(out)
        beat()
        if on_answers is not None:
            _report(on_answers, added)
        if not keep:
            alive = []
            break
        index = keep + [row for _, row in forked]
        if index != list(range(len(alive))):
            index_t = torch.tensor(index, device=mask.device)
            cache.batch_select_indices(index_t)
            mask, positions, next_ids = mask[index_t], positions[index_t], next_ids[index_t]
            alive = [alive[row] for row in keep] + [fork for fork, _ in forked]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = positions + 1
        for control, _ in controls:
            control.step, control.alive = _step + 1, torch.tensor(alive)
        logits, cache = forward(model, next_ids[:, None], mask, positions, cache)
    ended = [fork for lead in alive for fork in join(lead)]  # forks whose leads the token budget ended, as they did
    if on_answers is not None and alive:  # the ones the token budget ended
        _report(on_answers, _credit(credited, alive + ended, set(), budget))
    return [
        Generation(prompt, cut_after_block(config.start + tok.decode(tokens, skip_special_tokens=True)), len(tokens), seed,
                   tokens=tokens, stop_reason=stopped.get(i))
        for i, (prompt, tokens, seed) in enumerate(zip(prompts, out, seeds))
    ]


def _credit(credited: dict[int, float], alive: list[int], going: set[int], budget: int) -> float:
    """What a decoding step adds to the answers done: a row still going, one token of its budget;
    a row that ended, the rest of its answer. A row's shares add up to 1 whenever it ends, and the
    count moves at every step, not only when a batch's first answer ends (minutes into it)."""
    added = 0.0
    for row in alive:
        share = min(1.0, credited[row] + 1 / budget) if row in going else 1.0
        added, credited[row] = added + share - credited[row], share
    return added


def _report(on_answers: Callable[[float], None], added: float) -> None:
    if added > 0:
        on_answers(added)


def generate(
    model,
    prompts: str | Sequence[str],
    config: GenerationConfig | None = None,
    fwd_hooks: Iterable[tuple[str, HookFn]] = (),
    on_token: Callable[[int], None] | None = None,
    on_answers: Callable[[float], None] | None = None,
    steerer=None,
    steered_rows: Sequence[bool] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[Generation]:
    """Answer each prompt; ``steerer`` (a ``steer.Steerer``, on its schedule) and ``fwd_hooks``
    (any other hooks) apply to this call only. ``steered_rows`` says which prompts the steerer
    steers (default: all), so steered and unsteered answers decode in one batch; ``seeds``, each
    prompt's seed (default: ``config.seed + i``).

    For streaming and progress displays, ``on_token`` is called after every decoding step with
    the tokens of each answer of the current batch so far (a list per row), and ``on_answers``
    after every step with the answers it completed, in fractions (``_credit``: a row still
    decoding counts a share of its budget per token, so a long batch still shows progress).
    """
    config = config or GenerationConfig()
    prompts = _checked(prompts)
    seeds = [config.seed + i for i in range(len(prompts))] if seeds is None else list(seeds)
    for name, given in (("steered_rows", steered_rows), ("seeds", seeds)):
        if given is not None and len(given) != len(prompts):
            raise ValueError(f"{name} has {len(given)} entries for {len(prompts)} prompts")
    return _run(model, prompts, seeds, _batches(prompts, config.batch_size), config, fwd_hooks, on_token, on_answers,
                steerer, steered_rows)


def generate_pairs(model, prompts: Sequence[str], config: GenerationConfig, steerer,
                   on_answers: Callable[[float], None] | None = None) -> tuple[list[Generation], list[Generation]]:
    """``(plain, steered)``: each prompt answered unsteered and steered, decoded together
    (``generate_each``), so the pair takes about the time of the longer call instead of both."""
    return tuple(generate_each(model, prompts, config, (None, steerer), on_answers))


def generate_each(model, prompts: Sequence[str], config: GenerationConfig, steerers: Sequence,
                  on_answers: Callable[[float], None] | None = None, forks: dict[int, int] | None = None) -> list[list[Generation]]:
    """The answers of ``generate(model, prompts, config, steerer=s)`` for each of ``steerers``
    (None: unsteered), decoded together: each batch the call would form runs once per steerer,
    side by side in one batch, each copy steered by its own (same seeds). A sweep's candidates
    then cost about the longest of them instead of their sum.

    ``forks`` maps a steerer ``k`` to a steerer ``j`` that ``k`` is the same as until the fence
    line (``k`` steers until the fence, ``j`` every token, the same steering otherwise; the caller
    vouches for it): ``k``'s answers decode as ``j``'s until the fence line, then fork from a copy of
    its KV cache, and cost only what comes after it (whole answers where another process decodes)."""
    prompts, steerers = _checked(prompts), tuple(steerers)
    forks = dict(forks or {})
    schedules = [getattr(getattr(s, "spec", None), "schedule", None) for s in steerers]
    for k, j in forks.items():
        if not (0 <= k < len(steerers) and 0 <= j < len(steerers)) or j in forks or (schedules[k], schedules[j]) != ("fence", "all"):
            raise ValueError(f"fork {k} -> {j}: a steerer until the fence forks from one steering every token, among "
                             f"the {len(steerers)} steerers")
    seeds = [config.seed + i for i in range(len(prompts))]
    rows, row_seeds, groups, bounds = [], [], [], []
    for a, b in _batches(prompts, config.batch_size):
        bounds.append((len(rows), len(rows) + len(steerers) * (b - a)))
        for k in range(len(steerers)):
            rows, row_seeds, groups = rows + prompts[a:b], row_seeds + seeds[a:b], groups + [k] * (b - a)
    answers = _run(model, rows, row_seeds, bounds, config, (), None, on_answers, steerers, groups, forks)
    per = [(a, (b - a) // len(steerers)) for a, b in bounds]
    return [[g for a, n in per for g in answers[a + k * n : a + (k + 1) * n]] for k in range(len(steerers))]


def _checked(prompts) -> list[str]:
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("every prompt must be a non-empty string")
    return prompts


def _run(model, prompts, seeds, bounds, config, fwd_hooks, on_token, on_answers, steerer, steered_rows,
         forks=None) -> list[Generation]:
    """The batches ``bounds`` of ``prompts`` decoded here, or, inside ``parallel.workers``, by
    the Ray replicas (each batch whole, as it would be here, without ``forks``: the same answers)."""
    steered_rows = _conditioned(model, prompts, steerer, steered_rows)

    def rows(a, b):
        return None if steered_rows is None else steered_rows[a:b]

    pool = _POOL.get()
    if pool is not None and not fwd_hooks and on_token is None:
        batches = [(prompts[a:b], seeds[a:b], rows(a, b)) for a, b in bounds]
        return [g for batch in pool.generate(batches, config, steerer, on_answers or (lambda n: None)) for g in batch]
    results: list[Generation] = []
    with thread_hooks(model, list(fwd_hooks)):
        for a, b in bounds:
            # a row of steerer k forks from the row of steerer forks[k] for the same prompt (same place in the batch)
            n = (b - a) // len(steerer) if forks else 0
            batch_forks = {r: r - (k - j) * n for k, j in (forks or {}).items() for r in range(k * n, (k + 1) * n)}
            results.extend(decode_batch(model, prompts[a:b], seeds[a:b], config, on_token, on_answers, steerer, rows(a, b),
                                        batch_forks))
    return results


def _conditioned(model, prompts, steerer, steered_rows):
    """``steered_rows`` narrowed by each conditional steerer (``Steerer.steered_rows``): a prompt
    its condition reads as asking for another language is answered unsteered. For a tuple of
    steerers (``generate_each``), such a row's steerer index becomes None."""
    several = isinstance(steerer, tuple)
    reads = {}
    for k, one in enumerate(steerer if several else (steerer,)):
        if getattr(getattr(one, "spec", None), "conditional", False):
            unique = list(dict.fromkeys(prompts))
            reads[k] = dict(zip(unique, one.steered_rows(model, unique)))
    if not reads:
        return steered_rows
    if several:
        return [None if g in reads and not reads[g][p] else g for g, p in zip(steered_rows, prompts)]
    given = [True] * len(prompts) if steered_rows is None else steered_rows
    return [bool(r) and reads[0][p] for r, p in zip(given, prompts)]


def _batches(prompts: Sequence[str], batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive batches holding at most ``batch_size`` different prompts
    (a repeated prompt is run once, so its copies ride along) and at most ``REPEAT_ROWS`` times
    as many rows. Answers that open with prose decode long after the others have finished; the
    more rows share a batch, the fewer such tails run alone."""
    bounds, start, seen = [], 0, set()
    for i, prompt in enumerate(prompts):
        if prompt not in seen and len(seen) == batch_size or i - start == REPEAT_ROWS * batch_size:
            bounds.append((start, i))
            start, seen = i, set()
        seen.add(prompt)
    if start < len(prompts):
        bounds.append((start, len(prompts)))
    return bounds
