"""llama.cpp itself, on the real Qwen2.5-Coder-0.5B-Instruct GGUF (Q4_K_M), where llama-cpp-python
is installed (an optional extra: requirements-llama.txt builds it) and ``STEERSCOPE_REAL_MODEL`` names the model (``.ci/run``
fetches it):

- llama.cpp adds ``direction.N`` where Steerscope steers ``blocks.N.hook_resid_post`` at every
  position: the next-token logits move the same way, and not as block N-1's or N+1's would;
- llama.cpp's own loader (its ``llama-completion`` tool, where ``STEERSCOPE_LLAMA_COMPLETION``
  names it; ``.ci/run`` builds it) reads an exported file and decodes what llama-cpp-python
  decodes with the same vector given through the C API, token for token.
"""

import ctypes
import os
import subprocess

import numpy as np
import pytest
import torch

from steering.engine.forward import encode_prompts, format_prompt, forward, positions_of
from steering.engine.hooks import thread_hooks
from steering.pipeline.control_vectors import ControlVector

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python, an optional extra, is not installed (pip install -r requirements-llama.txt builds it)")
REAL = os.environ.get("STEERSCOPE_REAL_MODEL", "")
BINARY = os.environ.get("STEERSCOPE_LLAMA_COMPLETION", "")
pytestmark = pytest.mark.skipif(not os.path.isfile(REAL), reason="STEERSCOPE_REAL_MODEL names no file (the Qwen GGUF)")
PROMPT = "Write a function that reverses a string."
THREADS = max(1, min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def qwen():
    from steering.engine.models import load_model

    return load_model(REAL)  # Steerscope's own, dequantized from the same file


@pytest.fixture(scope="module")
def llama():
    llm = llama_cpp.Llama(model_path=REAL, n_ctx=1024, n_threads=THREADS, verbose=False)
    yield llm
    llm.close()  # now, not in __del__ at interpreter exit, when llama_cpp's module is half gone


def use(llm, vector: ControlVector | None) -> None:
    """Give llama.cpp ``vector`` through its C API (None: clear it), as its loader would."""
    n_layers = llama_cpp.llama_model_n_layer(llm.model)
    if vector is None:
        assert llama_cpp.llama_set_adapter_cvec(llm.ctx, None, 0, llm.n_embd(), 1, n_layers - 1) == 0
        return
    data = vector.llama_buffer(n_layers)
    llm._steerscope_cvec = data  # llama.cpp copies it, but keep it alive for the call
    pointer = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    assert llama_cpp.llama_set_adapter_cvec(llm.ctx, pointer, data.size, vector.width, 1, n_layers - 1) == 0


def llama_logits(llm, tokens, vector=None) -> np.ndarray:
    use(llm, vector)
    llm.reset()
    llm.eval(tokens)
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
    use(llm, None)
    return logits.astype(np.float64)


def steerscope_logits(model, text_prompt: str, vector=None) -> np.ndarray:
    hooks = vector.steerer(model).hooks(model) if vector is not None else []
    with torch.no_grad(), thread_hooks(model, hooks):
        ids, mask = encode_prompts(model, [text_prompt])
        logits, _ = forward(model, ids, mask, positions_of(mask))
    return logits[0].double().numpy()


def random_direction(width: int, norm: float, seed: int) -> torch.Tensor:
    v = torch.from_numpy(np.random.default_rng(seed).standard_normal(width).astype(np.float32))
    return v * (norm / v.norm())


def test_llama_cpp_adds_direction_n_where_steerscope_steers_block_n(qwen, llama, tmp_path):
    text = format_prompt(qwen.tokenizer, PROMPT, qwen.instruction)
    tokens = llama.tokenize(text.encode(), add_bos=False, special=True)
    assert tokens == qwen.tokenizer(text, add_special_tokens=False)["input_ids"]  # the same prompt, token for token
    block = 12
    direction = random_direction(qwen.d_model, 12.0, seed=0)
    path = ControlVector({block: direction}, "qwen2").save(tmp_path / "block12.gguf")
    read = ControlVector.read(path)
    moved = llama_logits(llama, tokens, read) - llama_logits(llama, tokens)
    base = steerscope_logits(qwen, PROMPT)
    correlation = {b: np.corrcoef(moved, steerscope_logits(qwen, PROMPT, ControlVector({b: direction}, "qwen2")) - base)[0, 1]
                   for b in (block - 1, block, block + 1)}
    assert correlation[block] > 0.9, correlation
    assert correlation[block] > max(correlation[block - 1], correlation[block + 1]) + 0.1, correlation  # 0.998 vs 0.73, 0.80


def greedy_llama(llm, tokens, n: int, vector=None) -> str:
    use(llm, vector)
    out = []
    llm.reset()  # else generate reuses the KV cache of a matching prefix, computed under the previous vector
    for token in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
        if llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.model), token) or len(out) >= n:
            break
        out.append(token)
    use(llm, None)
    return llm.detokenize(out).decode("utf-8", errors="replace")


@pytest.mark.skipif(not os.path.isfile(BINARY), reason="STEERSCOPE_LLAMA_COMPLETION names no llama-completion binary")
def test_llama_cpps_own_loader_reads_an_exported_file_as_the_c_api_is_given_it(qwen, llama, tmp_path):
    text = format_prompt(qwen.tokenizer, PROMPT, qwen.instruction)
    tokens = llama.tokenize(text.encode(), add_bos=False, special=True)
    vector = ControlVector({8: random_direction(qwen.d_model, 10.0, 1), 14: random_direction(qwen.d_model, 10.0, 2)},
                           "qwen2", {"steerscope.method": "mean_diff"})
    path = vector.save(tmp_path / "two-blocks.gguf")
    n = 24

    def binary(*extra) -> str:
        # flash attention off, as llama-cpp-python has it: the kernels round apart, and greedy answers part
        done = subprocess.run([BINARY, "-m", REAL, "-p", text, "-n", str(n), "--temp", "0", "-no-cnv", "-t", str(THREADS),
                               "--no-display-prompt", "--no-warmup", "-fa", "off", "-c", "1024", *extra],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "control vector" not in done.stderr.lower() or "failed" not in done.stderr.lower(), done.stderr[-2000:]
        return done.stdout.strip().removesuffix("[end of text]")  # what it prints when the answer ends

    steered = binary("--control-vector", str(path))
    assert steered.strip() == greedy_llama(llama, tokens, n, ControlVector.read(path)).strip()
    plain = binary()
    assert plain.strip() == greedy_llama(llama, tokens, n).strip() and plain != steered
