"""Steerscope's engine: load a code model, read its activations, and steer the language it writes.

Everything the dashboard shows is computed here, so it can be used from Python and from
``python -m steering`` without Streamlit::

    from steering import load_model, PromptSet, PipelineSettings, fit, generate

    model = load_model()  # the embedded demo model; or a Hugging Face directory or GGUF file
    artifacts = fit(model, PromptSet.load().head(16), "gact", PipelineSettings(target="cpp"))
    with artifacts.apply(model):
        print(generate(model, "Write a function that sums a list.")[0].text)
    artifacts.save("cpp.safetensors")

Names are imported on first use (``import steering`` stays light for the command line).
"""

from importlib import import_module

__version__ = "0.1.0"

_WHERE = {
    "load_model": "engine.models", "LoadedModel": "engine.models", "ModelLoadError": "engine.models",
    "PromptSet": "code.prompts", "PromptSetError": "code.prompts",
    "PipelineSettings": "pipeline.settings", "Pipeline": "pipeline.runner",
    "fit": "pipeline.artifacts", "fit_gact": "pipeline.artifacts", "SteeringArtifacts": "pipeline.artifacts", "METHODS": "methods.registry",
    "SteeringSpec": "methods.steer", "Steerer": "methods.steer", "GactSteerer": "methods.steer", "MeanDiffSteerer": "methods.steer",
    "NeuronSteerer": "methods.steer",
    "AdaptiveActivationSteering": "methods.act", "ActSteerer": "methods.act",
    "generate": "engine.generation", "GenerationConfig": "engine.generation",
    "detect_language": "code.detect",
    "Run": "store.storage", "StorageError": "store.storage", "RunLockedError": "store.storage",
    "RunResults": "pipeline.results", "Comparison": "reports.compare", "ComparisonError": "reports.compare",
    "ControlVector": "pipeline.control_vectors", "control_vector": "pipeline.control_vectors",
    "run_control_vector": "pipeline.control_vectors", "import_control_vector": "pipeline.control_vectors",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'steering' has no attribute {name!r}")
