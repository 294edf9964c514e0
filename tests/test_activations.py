"""Activation extraction: right positions through padding, the same numbers as TransformerLens's
own cache, answer positions, and the disk cache."""

import pytest
import torch

from steering.engine import activations
from steering.engine.activations import extract_activations
from steering.engine.forward import encode_prompts

PROMPTS = ["Sort a list.", "Write a function that integrates a function with Simpson's rule.", "Add."]


def test_padding_does_not_change_what_is_read(embedded):
    for position in ("last", "mean"):
        alone = extract_activations(embedded, PROMPTS, position=position, batch_size=1, cache_dir=None)
        together = extract_activations(embedded, PROMPTS, position=position, batch_size=3, cache_dir=None)
        assert alone.shape == (3, embedded.n_layers, embedded.d_model) and alone.dtype == torch.float32
        assert torch.allclose(alone, together, atol=1e-4)


def test_matches_run_with_cache_at_the_chosen_layers(embedded):
    got = extract_activations(embedded, PROMPTS[:1], layers=[1, 5], hook_point="mlp_out", continuation="```",
                              cache_dir=None)
    ids, _ = encode_prompts(embedded, PROMPTS[:1], "```")
    names = [embedded.hook_name(layer, "mlp_out") for layer in (1, 5)]
    _, cache = embedded.bridge.run_with_cache(ids, names_filter=lambda name: name in names)
    expected = torch.stack([cache[name][0, -1] for name in names]).float()
    assert got.shape == (1, 2, embedded.d_model)
    assert torch.allclose(got[0], expected, atol=1e-4)


def test_answer_positions_are_read_inside_the_continuation(embedded):
    # "```cpp" is two tokens; with one answer row it is read at the second: the last token.
    inside = extract_activations(embedded, PROMPTS, position="answer", continuation="```cpp", per_answer=1, cache_dir=None)
    last = extract_activations(embedded, PROMPTS, position="last", continuation="```cpp", cache_dir=None)
    assert torch.allclose(inside, last, atol=1e-4)
    rows = extract_activations(embedded, PROMPTS, position="answer", continuation=["```cpp\nint x;", "```cpp", "```cpp"],
                               per_answer=3, cache_dir=None)
    assert rows.shape == (9, embedded.n_layers, embedded.d_model)
    with pytest.raises(ValueError, match="give every prompt one"):
        extract_activations(embedded, PROMPTS, position="answer", cache_dir=None)
    with pytest.raises(ValueError, match="unknown position"):
        extract_activations(embedded, PROMPTS, position="first", cache_dir=None)


def test_second_run_reads_the_disk_cache(embedded, tmp_path, monkeypatch):
    first = extract_activations(embedded, PROMPTS, cache_dir=tmp_path)
    files = list((tmp_path / "activations").iterdir())
    assert len(files) == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(activations, "_extract", must_not_run)
    assert torch.equal(extract_activations(embedded, PROMPTS, cache_dir=tmp_path), first)
    monkeypatch.undo()
    files[0].write_bytes(b"damaged")  # a damaged entry is recomputed, not trusted
    assert torch.allclose(extract_activations(embedded, PROMPTS, cache_dir=tmp_path), first)
    other = extract_activations(embedded, PROMPTS, hook_point="attn_out", cache_dir=tmp_path)
    assert len(list((tmp_path / "activations").iterdir())) == 2 and not torch.equal(other, first)


@pytest.mark.parametrize("tamper", ["shape", "dtype", "nan", "key", "model"])
def test_a_cache_entry_of_the_wrong_shape_dtype_content_or_provenance_is_recomputed(embedded, tmp_path, tamper):
    from steering.store.storage import load_tensors, save_tensors

    first = extract_activations(embedded, PROMPTS, cache_dir=tmp_path)
    (path,) = (tmp_path / "activations").iterdir()
    tensors, meta = load_tensors(path)
    acts = tensors["activations"]
    if tamper == "shape":
        acts = acts[:1]
    elif tamper == "dtype":
        acts = acts.double()
    elif tamper == "nan":
        acts = acts.clone()
        acts[0, 0, 0] = float("nan")
    elif tamper == "key":
        meta["key"] = "another entry's key"
    else:
        meta["fingerprint"] = "another model"
    save_tensors(path, {"activations": acts}, meta)
    again = extract_activations(embedded, PROMPTS, cache_dir=tmp_path)
    assert torch.allclose(again, first) and again.dtype == torch.float32
    rewritten, rewritten_meta = load_tensors(path)  # the entry was replaced by a good one
    assert torch.equal(rewritten["activations"], again) and rewritten_meta["fingerprint"] == embedded.fingerprint
    assert rewritten_meta["key"] == path.stem
