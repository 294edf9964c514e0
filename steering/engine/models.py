"""Load a causal LM: the embedded model, a Hugging Face id, a local directory in Hugging Face
layout, or a GGUF file (dequantized once, then cached), all through one code path.

A ``LoadedModel`` holds the Hugging Face model, which the engine runs directly (its KV cache,
torch hooks only where a hook is asked for), and a TransformerLens ``TransformerBridge`` over the
same weights (a structural twin of the model's modules, sharing every parameter), which gives the
names users see and the TransformerLens API (``run_with_cache``, ``W_U``...).

Loading checks what it can before spending memory: that the source exists, that the weights fit,
and that weights come from safetensors (pickled ``.bin`` checkpoints are refused, since
unpickling a file runs its code). A model directory's own code never runs
(``trust_remote_code=False`` everywhere).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import torch

from ..code.prompts import ASSETS
from ..core.threads import configure_threads
from ..store.fingerprint import former_fingerprint, model_fingerprint
from .chat import ChatTemplateError, check_template
from .gguf import GGUFError, converted_dir, find_gguf
from .hooks import HOOK_POINTS, HookMap
from .placement import available_devices, describe, input_device, placement

EMBEDDED_MODEL_DIR = ASSETS / "model"
EMBEDDED_MODEL_NAME = "steerscope-demo"

DEFAULT_HOOK_POINT = "resid_post"

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
CPU_BF16_MIN_PARAMS = 100_000_000  # models from which ``auto`` runs bfloat16 on a CPU that computes it natively
_MEMORY_HEADROOM = 1.3  # activations, KV cache and the bridge's wrappers on top of the weights


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelFacts:
    name: str
    source: str  # "embedded", "local", "gguf" or "hub"
    architecture: str
    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    n_params: int
    device: str
    dtype: str
    n_hook_points: int
    instruction: str | None = None  # added to every prompt (see generation.CODE_BLOCK_INSTRUCTION)
    dtype_reason: str = ""  # why this dtype (``choose_dtype``)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedModel:
    """The Hugging Face model, its TransformerLens bridge, tokenizer and facts; shared read-only
    by every caller."""

    bridge: object  # transformer_lens.model_bridge.TransformerBridge, over a twin of hf_model
    tokenizer: object  # a transformers tokenizer
    facts: ModelFacts
    fingerprint: str = ""  # the content of the model's files (fingerprint.model_fingerprint); keys caches
    former_fingerprint: str = ""  # what runs made before content fingerprints stored for these files
    hf_model: object = None  # the transformers model the engine runs (weights shared with bridge)
    hook_map: HookMap | None = None  # TransformerLens hook names -> modules of hf_model

    @property
    def placement(self) -> str | None:
        """Where a device-mapped model's modules are ("6 modules on disk, 2 on cpu"); None on one device."""
        return describe(self.hf_model)

    def made_from(self, fingerprint: str) -> bool:
        """Whether a run or artifacts that stored ``fingerprint`` were made with this model."""
        return fingerprint in (self.fingerprint, self.former_fingerprint)

    @property
    def instruction(self) -> str | None:
        return self.facts.instruction

    @property
    def n_layers(self) -> int:
        return self.facts.n_layers

    @property
    def d_model(self) -> int:
        return self.facts.d_model

    @property
    def device(self) -> torch.device:
        return torch.device(self.facts.device)

    def hook_name(self, layer: int, point: str = DEFAULT_HOOK_POINT) -> str:
        """The TransformerLens hook name for ``point`` at ``layer``, with both checked."""
        if point not in HOOK_POINTS:
            raise ValueError(f"unknown hook point {point!r}; expected one of {', '.join(HOOK_POINTS)}")
        check_layers([layer], self.n_layers)
        return HOOK_POINTS[point].format(layer=int(layer))


def instruction_difference(was: str | None, now: str | None) -> str:
    """Why two loads of the same weights count as different models, if the instruction added to
    every prompt differs (a model from a folder gets the code-block instruction, the embedded
    model none); "" if it does not."""
    if was == now:
        return ""
    def words(text):
        return "no instruction" if not text else f"the instruction {text[:40]!r}{'...' if len(text) > 40 else ''}"
    return (f"another instruction in every prompt: it was made with {words(was)}, this load adds {words(now)} (a model "
            "loaded from a folder gets the code-block instruction, the embedded model none; load_model's instruction= "
            "sets it)")


def check_layers(layers, n_layers: int) -> list[int]:
    """Return ``layers`` as ints, or raise a ValueError naming the first one out of range."""
    out = []
    for layer in layers:
        if isinstance(layer, bool) or int(layer) != layer or not 0 <= int(layer) < n_layers:
            raise ValueError(f"layer {layer!r} is out of range: this model has layers 0..{n_layers - 1}")
        out.append(int(layer))
    return out


def pick_device(device: str | None = None) -> torch.device:
    """``device`` (cpu, cuda, cuda:N, mps) if torch reports it available here; a ModelLoadError
    naming it and what is available otherwise, before anything loads."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    here = available_devices()
    name = str(device).strip().lower()
    if name not in here and not (name == "cuda" and "cuda:0" in here):
        raise ModelLoadError(f"--device {str(device)[:40]!r} is not available here; available: {', '.join(here)}"
                             + ("" if "cuda:0" in here else " (torch sees no CUDA GPU)"))
    return torch.device(name)


def cpu_bf16_units() -> str | None:
    """The CPU's native bfloat16 arithmetic, as torch's own kernels detect it: AMX tiles, or
    AVX-512 BF16 dot products (AMD EPYC's, Qwen's MLP product 2-4x faster than float32); None
    where bfloat16 would be emulated, and slower than float32."""
    for name, supported in (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported")):
        if getattr(torch.cpu, supported, lambda: False)():
            return name
    return None


def choose_dtype(dtype: str | torch.dtype | None, device: torch.device, n_params: int = 0) -> tuple[torch.dtype, str]:
    """``(dtype, why)``. ``auto`` (or None): bfloat16 where the hardware multiplies it natively,
    else float32. That is a CUDA card that supports it, or a CPU with AMX or AVX-512 BF16
    (``cpu_bf16_units``) for a model of at least ``CPU_BF16_MIN_PARAMS`` (a smaller model's
    pace is Python's, and float32 costs it nothing)."""
    if isinstance(dtype, torch.dtype):
        return dtype, "given"
    if dtype not in (None, "auto"):
        if dtype not in _DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}; expected auto or one of {', '.join(_DTYPES)}")
        return _DTYPES[dtype], "given (--dtype)"
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
        return (torch.bfloat16, "this GPU computes bfloat16") if native else (torch.float32, "this GPU has no bfloat16")
    if device.type != "cpu":
        return torch.float32, f"float32 on {device.type}"
    units = cpu_bf16_units()
    if units is None:
        return torch.float32, "this CPU has no native bfloat16 arithmetic (neither AMX nor AVX-512 BF16)"
    if n_params < CPU_BF16_MIN_PARAMS:
        return torch.float32, (f"{n_params / 1e6:.1f}M parameters, under the {CPU_BF16_MIN_PARAMS / 1e6:.0f}M from which "
                               f"bfloat16 pays on a CPU (this one has {units})")
    return torch.bfloat16, f"this CPU multiplies bfloat16 natively ({units}), and the model has {n_params / 1e6:.0f}M parameters"


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device, n_params: int = 0) -> torch.dtype:
    """The dtype of ``choose_dtype``, without its reason."""
    return choose_dtype(dtype, device, n_params)[0]


def available_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``org/name``: anything rooted, deeper, or present on disk is a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).exists()


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _resolve(name: str | None, memory_budget: int) -> tuple[str, str, str]:
    """Return (what to load from, display name, source kind), or raise ModelLoadError."""
    if name in (None, "", EMBEDDED_MODEL_NAME):
        if not (EMBEDDED_MODEL_DIR / "config.json").is_file():
            raise ModelLoadError(
                f"the embedded model is missing from {EMBEDDED_MODEL_DIR}; "
                "rebuild it with: python -m steering.demo_model train"
            )
        return str(EMBEDDED_MODEL_DIR), EMBEDDED_MODEL_NAME, "embedded"
    name = str(name).strip()
    if _looks_like_path(name):
        path = Path(name).expanduser()
        try:
            gguf = find_gguf(path)
            if gguf is not None:
                return str(converted_dir(gguf, memory_budget)), gguf.stem, "gguf"
        except GGUFError as err:
            raise ModelLoadError(str(err)) from None
        if path.is_file():
            raise ModelLoadError(f"{path.name} is a file but not a GGUF model; give a model directory or a .gguf file")
        if not path.is_dir():
            raise ModelLoadError(f"no model directory at {path}")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} has no config.json: it is not a model in Hugging Face layout")
        return str(path), path.name, "local"
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True), name, "hub"
    except Exception:  # not in the local cache: fall through to the Hub, if it can be reached
        pass
    if not _hub_reachable():
        raise ModelLoadError(
            f"model {name!r} is not in the local Hugging Face cache and the Hub cannot be reached "
            "from here; download it where there is a network, or give a local directory"
        )
    try:
        return snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]), name, "hub"
    except Exception as err:
        raise ModelLoadError(f"unknown model {name!r} on the Hugging Face Hub ({type(err).__name__})") from None


def _count_params(path: str, config) -> int:
    """Parameters counted without allocating them (on the meta device)."""
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # an architecture transformers cannot build: fall back to the file sizes
        return sum(f.stat().st_size for f in Path(path).glob("*.safetensors")) // 4


def load_model(
    name: str | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    max_memory_bytes: int | None = None,
    instruction: str | None = "auto",
    device_map: str | None = None,
    max_memory: dict | None = None,
) -> LoadedModel:
    """Load ``name`` (None: the embedded model; a Hugging Face id; a local directory; or a GGUF
    file, or a directory holding one).

    ``max_memory_bytes`` caps the memory the weights may take (default: what is free now).
    ``instruction`` is added to every prompt: ``"auto"`` gives chat models other than the
    embedded one ``generation.CODE_BLOCK_INSTRUCTION`` (instruct models otherwise explain before
    they code), None gives none, and any text is used as is. Torch's thread count is set from the
    free cores (``threads.configure_threads``). ``device_map="auto"`` spreads a model too large
    for one device over the GPUs, CPU memory and disk (accelerate), within ``max_memory`` per
    device (``{0: "20GiB", "cpu": "64GiB"}``; see ``placement``).
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .generation import CODE_BLOCK_INSTRUCTION

    hf_logging.disable_progress_bar()  # per-tensor bars; the CLI and the dashboard show their own
    configure_threads()
    torch_device = pick_device(device)
    pick_dtype(dtype, torch_device)  # an unknown dtype fails before a GGUF is converted
    spread = placement(device_map, max_memory)
    cpu_budget = max_memory_bytes if max_memory_bytes is not None else available_memory(torch.device("cpu"))
    path, display, source = _resolve(name, cpu_budget)
    config, torch_dtype, dtype_reason = _checked_config(path, display, torch_device, dtype, max_memory_bytes, check_fit=not spread)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as err:
        raise ModelLoadError(f"cannot load the tokenizer of {display}: {err}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if instruction == "auto":
        instruction = CODE_BLOCK_INSTRUCTION if has_template and source != "embedded" else None
    if has_template and source != "embedded":  # the embedded model's template is ours
        try:
            check_template(tokenizer, instruction)
        except ChatTemplateError as err:
            raise ModelLoadError(f"cannot use the chat template of {display}: {err}") from None
    hf_model, bridge = _load_weights(path, display, tokenizer, torch_device, torch_dtype, spread)
    torch_device = input_device(hf_model) if spread else torch_device
    cfg = bridge.cfg
    facts = ModelFacts(
        name=display,
        source=source,
        architecture=(config.architectures or [type(hf_model).__name__])[0],
        n_layers=int(cfg.n_layers),
        d_model=int(cfg.d_model),
        n_heads=int(cfg.n_heads),
        d_mlp=int(getattr(cfg, "d_mlp", 0) or 0),
        d_vocab=int(cfg.d_vocab),
        n_ctx=int(cfg.n_ctx),
        n_params=sum(p.numel() for p in hf_model.parameters()),
        device=str(torch_device),
        dtype=str(torch_dtype).removeprefix("torch."),
        n_hook_points=len(bridge.hook_dict),
        instruction=instruction,
        dtype_reason=dtype_reason,
    )
    return LoadedModel(bridge=bridge, tokenizer=tokenizer, facts=facts,
                       fingerprint=model_fingerprint(path, dtype=facts.dtype, instruction=facts.instruction),
                       former_fingerprint=former_fingerprint(path, {k: v for k, v in facts.as_dict().items() if k != "dtype_reason"}),
                       hf_model=hf_model, hook_map=HookMap(hf_model, bridge.adapter.component_mapping))


def _checked_config(path: str, display: str, torch_device, dtype, max_memory_bytes: int | None, check_fit: bool):
    """The model's config, dtype and why (``choose_dtype``), once it is known to need no code of its
    own, to have safetensors weights, and (``check_fit``: on one device) to fit in the memory
    there is."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as err:
        if "custom code" in str(err):
            raise ModelLoadError(f"{display} needs its own custom code to load (auto_map in its config.json); "
                                 "Steerscope never runs a model's code: use an architecture transformers supports") from None
        raise ModelLoadError(f"cannot read the model config in {path}: {err}") from None
    if not any(Path(path).glob("*.safetensors")):
        raise ModelLoadError(
            f"{path} has no .safetensors weights; Steerscope does not unpickle .bin checkpoints. "
            "Convert it with transformers' save_pretrained(safe_serialization=True)"
        )
    n_params = _count_params(path, config)
    torch_dtype, why = choose_dtype(dtype, torch_device, n_params)
    if not check_fit:  # a device map places what fits and offloads the rest
        return config, torch_dtype, why
    needed = int(n_params * torch.tensor([], dtype=torch_dtype).element_size() * _MEMORY_HEADROOM)
    budget = max_memory_bytes if max_memory_bytes is not None else available_memory(torch_device)
    if needed > budget:
        raise ModelLoadError(
            f"{display} needs about {needed / 2**30:.1f} GiB on {torch_device.type} "
            f"({n_params / 1e6:.0f}M parameters in {str(torch_dtype).removeprefix('torch.')}), "
            f"but only {budget / 2**30:.1f} GiB is available"
        )
    return config, torch_dtype, why


def _load_weights(path: str, display: str, tokenizer, torch_device, torch_dtype, spread: dict):
    """``(hf_model, bridge)``: the frozen Hugging Face model and the TransformerLens bridge on
    its twin, or a ModelLoadError for a checkpoint that is incomplete, corrupt or incompatible."""
    from transformers import AutoModelForCausalLM

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_model, info = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype, use_safetensors=True,
                output_loading_info=True, trust_remote_code=False, **spread,
            )
            # transformers fills missing weights with random ones and only warns: refuse that.
            if info.get("missing_keys"):
                missing = sorted(info["missing_keys"])
                raise ModelLoadError(
                    f"the checkpoint in {path} lacks {len(missing)} weight(s) (e.g. {missing[0]}): "
                    "incomplete or corrupt"
                )
            (hf_model if spread else hf_model.to(torch_device)).eval()
            for param in hf_model.parameters():
                param.requires_grad_(False)
            bridge = _boot(path, _twin(hf_model), tokenizer, torch_device, torch_dtype)
    except ModelLoadError:
        raise
    except Exception as err:
        raise ModelLoadError(
            f"the checkpoint of {display} could not be loaded (corrupt or incompatible): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    for param in bridge.parameters():  # shared with hf_model, plus any the bridge made itself
        param.requires_grad_(False)
    return hf_model, bridge


def _twin(hf_model):
    """A structural copy of ``hf_model`` that shares every parameter and buffer: the bridge
    replaces its modules with its own wrappers in place, and the engine keeps the original."""
    shared = {id(t): t for t in (*hf_model.parameters(), *hf_model.buffers())}
    return copy.deepcopy(hf_model, shared)


def _boot(path: str, hf_model, tokenizer, device: torch.device, dtype: torch.dtype):
    from transformer_lens.model_bridge import TransformerBridge

    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the bridge logs alias notices at WARNING
    try:
        return TransformerBridge.boot_transformers(
            path, hf_model=hf_model, tokenizer=tokenizer, device=device, dtype=dtype
        )
    finally:
        logging.getLogger().setLevel(previous)


def model_card(path: Path = EMBEDDED_MODEL_DIR) -> dict:
    """The training record written next to the embedded model (empty if there is none)."""
    card = path / "training.json"
    return json.loads(card.read_text()) if card.is_file() else {}
