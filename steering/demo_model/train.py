"""Train the embedded demo model from nothing: a byte-level BPE tokenizer and a small
Llama-architecture causal LM, deterministic for a seed, a few minutes on two CPU cores.

The output is a standard Hugging Face directory (``config.json``, ``model.safetensors``,
tokenizer files) plus ``training.json``, the record of how it was made.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..core.files import atomic_write_bytes
from ..engine.models import EMBEDDED_MODEL_DIR
from .corpus import Example, build_examples, design_shares, write_prompt_set

SPECIAL_TOKENS = ("<|endoftext|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>\n{{ message['content'] }}\n"
    "{% else %}<|assistant|>\n{{ message['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    vocab_size: int = 2048
    d_model: int = 128
    n_layers: int = 8
    n_heads: int = 4
    d_mlp: int = 384
    n_ctx: int = 512
    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 60
    tag_weight: float = 10.0  # loss weight of the language-tag token
    threads: int = 2
    max_examples: int | None = None  # train on the first N examples of each epoch (for quick tests)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (any text encodes) in Hugging Face's fast-tokenizer layout."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=SPECIAL_TOKENS[0],
        eos_token=SPECIAL_TOKENS[0],
        pad_token=SPECIAL_TOKENS[0],
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def encode_examples(tokenizer, examples: list[Example], tag_weight: float) -> list[tuple[list[int], list[int], float]]:
    """Token ids, labels and language-tag weight per example; only the answer is learned.

    A full answer ends with the end token; a neutral example's answer is only an opening. The
    answer starts with the fence, then the language tag (``answer_ids[1]``), where the model
    decides the language. On explicit examples that token is weighted up, because it is one token
    among hundreds and reading the named language would otherwise be learned last; the weight is
    ``tag_weight`` on average and shared out so that every language carries the same total (a
    language with more examples, for its code, gains no preference at the tag). Neutral tags keep
    weight 1, which leaves the learned language mix calibrated.
    """
    explicit = Counter(e.language for e in examples if not e.neutral)
    mean_count = sum(explicit.values()) / max(1, len(explicit))
    prefixes = [
        tokenizer.apply_chat_template([{"role": "user", "content": e.prompt}], tokenize=False, add_generation_prompt=True)
        for e in examples
    ]
    prompt_ids = tokenizer(prefixes, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer([e.answer for e in examples], add_special_tokens=False)["input_ids"]
    encoded = []
    for example, prompt, answer in zip(examples, prompt_ids, answer_ids):
        if not example.neutral:
            answer = answer + [tokenizer.eos_token_id]
        weight = 1.0 if example.neutral else tag_weight * mean_count / explicit[example.language]
        encoded.append((prompt + answer, [-100] * len(prompt) + answer, weight))
    return encoded


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, each target weighted (0 where the label is -100)."""
    logits, labels, weights = logits[:, :-1], labels[:, 1:], weights[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="none"
    )
    weights = weights.reshape(-1)
    return (losses * weights).sum() / weights.sum()


def _batches(encoded, batch_size: int, rng: random.Random, pad_id: int):
    """Length-bucketed batches (little padding), in a seeded random order."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    pool = batch_size * 16
    groups = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(encoded[i][0]))
        groups += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(groups)
    for group in groups:
        width = max(len(encoded[i][0]) for i in group)
        ids = torch.full((len(group), width), pad_id)
        labels = torch.full((len(group), width), -100)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        tag_weights = torch.zeros(len(group))
        for row, i in enumerate(group):
            tokens, targets, tag_weights[row] = encoded[i]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            labels[row, : len(targets)] = torch.tensor(targets)
            mask[row, : len(tokens)] = 1
        weights = (labels != -100).float()
        first_answer = (labels != -100).float().argmax(dim=1)
        weights[torch.arange(len(group)), first_answer + 1] = tag_weights
        yield ids, labels, mask, weights


def train(out_dir: Path = EMBEDDED_MODEL_DIR, settings: TrainSettings = TrainSettings()) -> dict:
    """Build the corpus, train tokenizer and model, and save them to ``out_dir``."""
    started = time.time()
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(settings.seed)
    write_prompt_set()
    examples = build_examples(settings.seed)
    tokenizer = train_tokenizer([e.prompt + "\n" + e.answer for e in examples], settings.vocab_size)
    epochs = [
        encode_examples(tokenizer, build_examples(settings.seed * 1000 + epoch)[: settings.max_examples], settings.tag_weight)
        for epoch in range(settings.epochs)
    ]
    longest = max(len(ids) for encoded in epochs for ids, _, _ in encoded)
    if longest > settings.n_ctx:
        raise ValueError(f"an example is {longest} tokens, longer than n_ctx={settings.n_ctx}")
    model = _new_model(tokenizer, settings)
    total_steps = sum(math.ceil(len(encoded) / settings.batch_size) for encoded in epochs)
    optimizer, scheduler = _optimizer(model, settings, total_steps)
    n_tokens = sum(len(ids) for ids, _, _ in epochs[0])
    history = []
    bar = tqdm(total=total_steps, desc="training", unit="step", disable=settings.max_examples is not None)
    for epoch, encoded in enumerate(epochs):
        losses = []
        batches = _batches(encoded, settings.batch_size, rng, tokenizer.pad_token_id)
        for ids, labels, mask, weights in batches:
            loss = weighted_loss(model(input_ids=ids, attention_mask=mask).logits, labels, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        history.append(round(sum(losses) / len(losses), 4))
    bar.close()
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    record = {
        "settings": asdict(settings),
        "examples_per_epoch": len(examples),
        "tokens_per_epoch": n_tokens,
        "longest_example_tokens": longest,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epoch_losses": history,
        "train_seconds": round(time.time() - started, 1),
        "design_shares": {k: round(v, 4) for k, v in design_shares().items()},
        "torch": torch.__version__,
        "threads": settings.threads,
        "cpu_count": os.cpu_count(),
    }
    atomic_write_bytes(out_dir / "training.json", (json.dumps(record, indent=2) + "\n").encode())
    return record


def _new_model(tokenizer, settings: TrainSettings):
    """A randomly initialised Llama of the settings' size, in training mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.d_model,
        intermediate_size=settings.d_mlp,
        num_hidden_layers=settings.n_layers,
        num_attention_heads=settings.n_heads,
        num_key_value_heads=settings.n_heads,
        max_position_embeddings=settings.n_ctx,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.train()
    return model


def _optimizer(model, settings: TrainSettings, total_steps: int):
    """AdamW (no decay on biases and norms) with a linear warm-up and a cosine decay to 5%."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr, betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, total_steps - settings.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
