"""What the selection's three savings of issue 29 buy, each measured against the work it
replaces, side by side in one run on one model (loaded as the pipeline loads it):

- the prompts' shared start (the chat template's system turn) run once, against a whole prompt
  pass (a caller's hook forces whole passes, so the layout is the same);
- a candidate's code scored against the asked prompts' pass run once (``PromptPrefix.logprob``),
  against a whole pass over prompt and code (the scoring before);
- until-the-fence candidates forking from their every-token twins at the fence line, against
  decoding them apart (the answers must be equal).

    python bench/bench_selection.py [--model MODEL.gguf] [--tasks N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_default_run import cpu_model, run_arguments  # noqa: E402
from steering.code.fences import from_fence  # noqa: E402
from steering.code.prompts import PromptSet  # noqa: E402
from steering.engine.activations import extract_activations  # noqa: E402
from steering.engine.forward import encode_prompts, forward, positions_of, prompt_cache, shared_columns
from steering.engine.generation import GenerationConfig, generate, generate_each
from steering.engine.hooks import thread_hooks  # noqa: E402
from steering.engine.models import load_model  # noqa: E402
from steering.engine.prefix import PromptPrefix  # noqa: E402
from steering.methods.steer import MeanDiffSteerer, SteeringSpec  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def whole_logprob(model, prompts, continuations) -> np.ndarray:
    """The scoring before: one pass over each prompt and its code."""
    tok = model.tokenizer
    lengths = [len(tok(c, add_special_tokens=False)["input_ids"]) for c in continuations]
    ids, mask = encode_prompts(model, prompts, continuations)
    keep = max(lengths) + 1
    with torch.no_grad():
        logits, _ = forward(model, ids, mask, positions_of(mask), keep=keep)
    logits, targets = logits[:, -keep:-1], ids[:, ids.shape[1] - keep + 1:]
    scores = torch.log_softmax(logits.float(), -1).gather(-1, targets[..., None])[..., 0]
    return np.array([float(scores[i, -n:].mean()) for i, n in enumerate(lengths)])


def main() -> None:
    args = run_arguments(__doc__).parse_args()
    model = load_model(args.model)
    tasks = list(PromptSet.load())[: args.tasks]
    print(f"CPU: {cpu_model()}; torch {torch.__version__}; {model.facts.name}, {model.facts.dtype}; {len(tasks)} tasks")
    paraphrases = [t.paraphrases[0] if t.paraphrases else t.neutral for t in tasks]
    asked = [t.prompts["cpp"] for t in tasks]

    ids, mask = encode_prompts(model, paraphrases)
    noop = [(model.hook_name(0, "resid_post"), lambda activation, hook: None)]
    with torch.no_grad():
        prompt_cache(model, ids[:, :-1], mask[:, :-1])  # warm-up
        shared_s, _ = timed(lambda: prompt_cache(model, ids[:, :-1], mask[:, :-1]))
        with thread_hooks(model, noop):
            whole_s, _ = timed(lambda: prompt_cache(model, ids[:, :-1], mask[:, :-1]))
    print(f"prompt pass of {len(ids)} paraphrases ({int(mask.sum())} tokens, {shared_columns(ids, mask)} shared by all): "
          f"whole {whole_s:.2f} s, shared start once {shared_s:.2f} s ({shared_s / whole_s:.2f}x)")

    config = GenerationConfig(max_new_tokens=160, stop="tag", after_tag=32)
    code = [from_fence(a.text) for a in generate(model, asked, config)]
    before_s, before = timed(lambda: whole_logprob(model, asked, code))
    prefix_s, prefix = timed(lambda: PromptPrefix(model, asked))
    score_s, after = timed(lambda: prefix.logprob(code))
    print(f"scoring {len(code)} asked answers' code: whole passes {before_s:.2f} s; the prompts once {prefix_s:.2f} s, "
          f"then {score_s:.2f} s per candidate ({score_s / before_s:.2f}x); largest difference "
          f"{np.nanmax(np.abs(before - after)):.4f} nats/token")

    layer = model.n_layers // 2
    plain = extract_activations(model, [t.neutral for t in tasks], layers=[layer], cache_dir=False)
    wanted = extract_activations(model, asked, layers=[layer], cache_dir=False)
    vectors = torch.zeros(model.n_layers, model.d_model)
    vectors[layer] = (wanted - plain).mean(0)[0]
    steerers = [MeanDiffSteerer(SteeringSpec((layer,), (1.0,), "mean_diff", schedule=s), vectors) for s in ("all", "fence")]
    config = GenerationConfig(max_new_tokens=160, stop="tag", after_tag=32, batch_size=len(paraphrases))
    apart_s, apart = timed(lambda: generate_each(model, paraphrases, config, steerers))
    forked_s, forked = timed(lambda: generate_each(model, paraphrases, config, steerers, forks={1: 0}))
    same = [[a.tokens for a in answers] for answers in apart] == [[a.tokens for a in answers] for answers in forked]
    tokens = [sum(a.n_tokens for a in answers) for answers in apart]
    print(f"every token and until the fence on {len(paraphrases)} paraphrases ({tokens[0]} and {tokens[1]} tokens): "
          f"apart {apart_s:.1f} s, forked at the fence line {forked_s:.1f} s ({forked_s / apart_s:.2f}x); "
          f"answers equal: {same}")


if __name__ == "__main__":
    main()
