"""One method registry: a method defined only here (a random direction of the mean difference's
norm, a control) is one ``register`` call plus its class, and the CLI, the evaluation, the run's
tables, the Steer page's choices and the artifacts all take it with nothing else changed."""

from __future__ import annotations

import pytest
import torch

from conftest import DASHBOARD_RUN
from steering.code.prompts import PromptSet
from steering.interface.actions import RunSteering
from steering.interface.cli.main import build_parser
from steering.methods import registry as methods
from steering.methods.registry import G_ACT_STAGES, Method, register
from steering.methods.steer import MeanDiffSteerer, SteeringSpec
from steering.pipeline.artifacts import SteeringArtifacts, fit
from steering.pipeline.results import RunResults
from steering.pipeline.runner import Pipeline
from steering.pipeline.settings import PipelineSettings


class RandomSteerer(MeanDiffSteerer):
    """A fixed random direction per layer (in ``mean_vectors``), as long as the mean difference there."""

    method = "random_direction"


def _build(learned, spec, settings, model):
    mean = learned.mean_vectors()
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(settings.seed))
    return RandomSteerer(spec, noise / noise.norm(dim=-1, keepdim=True) * mean.norm(dim=-1, keepdim=True))


@pytest.fixture
def random_method():
    entry = register(Method("random_direction", "random direction (control)", _build,
                            stages=lambda s: G_ACT_STAGES, needs=lambda s: ("extract",), steerer_type=RandomSteerer))
    try:
        yield entry
    finally:
        del methods.METHODS["random_direction"]


def test_a_method_defined_only_in_a_test_is_everywhere(random_method, dashboard_runs, embedded, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, run_dir)
    args = build_parser().parse_args(["eval", str(run_dir), "--method", "random_direction"])  # a CLI choice
    assert args.method == ["random_direction"]
    pipeline = Pipeline.reopen(run_dir, embedded)
    scored = pipeline.run_stage("eval", method="random_direction", prompt_set="neutral")
    assert scored["spec"]["method"] == "random_direction" and scored["steered"]["success"] is not None
    results = RunResults(run_dir)
    assert "random_direction" in results.evaluated_methods() and "random_direction" in results.method_table().index
    steering = RunSteering(run_dir, embedded)
    assert "random_direction" in steering.available(results.has)  # the Steer page offers it
    steerer = steering.steerer("random_direction", [1], [0.5])
    assert isinstance(steerer, RandomSteerer)
    artifacts = fit(embedded, PromptSet.load().head(6), "random_direction",
                    PipelineSettings(probe_epochs=100, sweep_alphas=(0.5,), max_new_tokens=32, batch_size=16))
    loaded = SteeringArtifacts.load(artifacts.save(tmp_path / "random.safetensors"), embedded)
    assert isinstance(loaded.steerer, RandomSteerer) and torch.equal(loaded.steerer.mean_vectors, artifacts.steerer.mean_vectors)


def test_the_registry_refuses_what_it_does_not_know():
    with pytest.raises(ValueError, match="unknown method 'telepathy'"):
        methods.method("telepathy")
    with pytest.raises(ValueError, match="unknown steering method 'telepathy'"):  # where a spec becomes a steerer
        methods.steerer_class(SteeringSpec((0,), (1.0,), method="telepathy").method)
    with pytest.raises(ValueError, match="method 'telepathy' steers with specs of its own: give its steerer_type"):
        Method("telepathy", "telepathy", _build, stages=lambda s: G_ACT_STAGES)
    assert Method("x", "x", _build, stages=lambda s: G_ACT_STAGES, steerer_type=RandomSteerer).export_note, \
        "a method that does not say its export is exact is taken as approximate"
    assert methods.steering_methods() == ["mean_diff", "act", "gact", "neuron"]
    assert {m: methods.METHODS[m].steers_as for m in ("gact_unrefined", "gact_online")} == {
        "gact_unrefined": "gact", "gact_online": "gact"}


class ProbeDirectionSteerer(MeanDiffSteerer):
    """Adds, per layer, the unit weight vector of a logistic regression that tells the target
    prompt's activation from the neutral one's, scaled to the mean difference's norm."""

    method = "probe_direction"


def _fit_directions(learned, spec, settings, model):
    """Its own fitted state, from the run's stored activations alone (no stage of its own)."""
    from sklearn.linear_model import LogisticRegression

    from steering.store.schema import ACTIVATIONS

    acts = learned.tensors(ACTIVATIONS)
    neutral, target = acts["neutral"].float(), acts["target"].float()
    mean = learned.mean_vectors().float()
    directions = torch.zeros_like(mean)
    for layer in range(mean.shape[0]):
        X = torch.cat([neutral[:, layer], target[:, layer]]).numpy()
        y = [0] * len(neutral) + [1] * len(target)
        w = torch.tensor(LogisticRegression(max_iter=500).fit(X, y).coef_[0], dtype=torch.float32)
        directions[layer] = w / w.norm().clamp_min(1e-8) * mean[layer].norm()
    return ProbeDirectionSteerer(spec, directions)


@pytest.fixture
def probe_direction():
    entry = register(Method("probe_direction", "probe direction", _fit_directions, stages=lambda s: G_ACT_STAGES,
                            needs=lambda s: ("extract",), steerer_type=ProbeDirectionSteerer, export_note=None,
                            residual_vectors=lambda learned: learned.mean_vectors()))
    try:
        yield entry
    finally:
        del methods.METHODS["probe_direction"]


def test_a_method_with_its_own_fitted_state_runs_everywhere_from_this_file_alone(probe_direction, dashboard_runs,
                                                                                  embedded, tmp_path, monkeypatch):
    """Fit, evaluation, the llama.cpp export, the Steer page and the report take a method defined
    here (its steerer, its fitting, its registry entry) with no library file changed."""
    import shutil

    from streamlit.testing.v1 import AppTest

    from steering.pipeline.control_vectors import run_control_vector
    from steering.reports.report import build_report

    artifacts = fit(embedded, PromptSet.load().head(6), "probe_direction",
                    PipelineSettings(probe_epochs=100, sweep_alphas=(0.5,), max_new_tokens=32, batch_size=16))
    assert isinstance(artifacts.steerer, ProbeDirectionSteerer)
    loaded = SteeringArtifacts.load(artifacts.save(tmp_path / "direction.safetensors"), embedded)
    assert torch.equal(loaded.steerer.mean_vectors, artifacts.steerer.mean_vectors)

    runs = tmp_path / "runs"
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, runs / DASHBOARD_RUN)
    pipeline = Pipeline.reopen(runs / DASHBOARD_RUN, embedded)
    scored = pipeline.run_stage("eval", method="probe_direction", prompt_set="neutral")  # the evaluation
    assert scored["spec"]["method"] == "probe_direction"
    vector = run_control_vector(pipeline, "probe_direction", accept_inexact=True)  # llama.cpp steers the prompt too
    assert vector.directions and "as their mean" not in str(vector.differences)  # exact per token, as it declares

    results = RunResults(runs / DASHBOARD_RUN)
    assert "probe direction" in build_report(results, method="probe_direction")  # the report

    monkeypatch.setattr("views.common.RUNS_ROOT", runs)
    app = AppTest.from_file(str(__import__("pathlib").Path(__file__).resolve().parent.parent / "app.py"),
                            default_timeout=180)
    app.query_params["run"] = DASHBOARD_RUN
    app.run()
    app.switch_page("views/steer.py").run()
    app.selectbox(key="method").select("probe_direction").run()  # the Steer page offers it...
    app.button[0].click().run()  # ...and generates with it
    assert not app.exception and not app.error
    assert any(c.value.startswith("probe direction on layers") for c in app.caption)


def test_gact_off_class_is_the_selections_choice_unless_given():
    """Issue 30: with no --off-class, the selection tries both (``Method.options``) and the
    evaluation steers with the one it chose (``chosen_options``)."""
    from types import SimpleNamespace

    from steering.methods.registry import METHODS

    entry = METHODS[METHODS["gact"].selection]
    assert entry.options(PipelineSettings()) == [{"off_class": "weight"}, {"off_class": "gate"}]
    assert entry.options(PipelineSettings(off_class="gate")) == [{"off_class": "gate"}]
    assert entry.options(PipelineSettings(adaptive=False)) == [{"off_class": "weight"}]  # no class to gate with
    chose = SimpleNamespace(selection=lambda name: {"schedule": "all", "margin": 4.0, "off_class": "gate"})
    assert entry.chosen_options(chose, PipelineSettings()) == {"off_class": "gate"}
    assert entry.chosen_options(chose, PipelineSettings(off_class="weight")) == {"off_class": "weight"}
    assert entry.chosen_options(SimpleNamespace(selection=lambda name: None), PipelineSettings()) == {"off_class": "weight"}
    assert METHODS["mean_diff"].options(PipelineSettings()) == [{}]
