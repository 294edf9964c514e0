"""Every dashboard page through Streamlit's AppTest: the embedded model, a small run, the Steer
page's toggles and generation, the inline errors, and two sessions steering at once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import DASHBOARD_RUN, hashes
from test_bad_input import HOSTILE_TEMPLATES

from steering.pipeline.results import RunResults

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["views/bias.py", "views/probes.py", "views/clusters.py", "views/steer.py", "views/report.py"]


@pytest.fixture
def runs(dashboard_runs, monkeypatch):
    monkeypatch.setattr("views.common.RUNS_ROOT", dashboard_runs)
    return dashboard_runs


def opened(run: str | None = DASHBOARD_RUN) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=180)
    if run:
        app.query_params["run"] = run
    return app.run()


def plotly_titles(app: AppTest) -> list[str]:
    import json

    # long titles wrap (figures.TITLE_WIDTH): read them as one line
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"].replace("<br>", " ") for chart in app.get("plotly_chart")]


def test_home_loads_the_embedded_model_and_greets(runs):
    app = opened(run=None)
    assert not app.exception
    assert "Hello!" in app.success[0].value and "steerscope-demo" in app.success[0].value
    metrics = {m.label: m.value for m in app.metric}
    assert int(metrics["Layers"]) >= 8 and metrics["dtype"] == "float32"
    assert "none open" in app.sidebar.caption[1].value


def test_home_reports_a_bad_model_inline(runs):
    app = opened(run=None)
    app.text_input(key="model_input").input("/no/such/model/dir").run()
    assert not app.exception
    assert "no model directory" in app.error[0].value
    app.text_input(key="model_input").input("").run()  # and the page keeps working
    assert not app.error and "Hello!" in app.success[0].value


def test_home_loads_a_gguf_file(runs, tiny_gguf, tmp_path, monkeypatch):
    monkeypatch.setattr("steering.engine.gguf.cache_root", lambda: tmp_path / "gguf-cache")
    app = opened(run=None)
    app.text_input(key="model_input").input(tiny_gguf).run()
    assert not app.exception and not app.error
    assert "tiny-qwen2" in app.success[0].value and "Qwen2ForCausalLM" in app.success[0].value
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    app.text_input(key="model_input").input(str(broken)).run()
    assert not app.exception
    assert "not a readable GGUF file" in app.error[0].value


def test_home_runs_the_pipeline_on_a_subset_and_opens_the_run(runs):
    app = opened(run=None)
    app.number_input[1].set_value(4)  # tasks to use
    app.text_input[1].input("from-home")  # run name
    app.button[-1].click().run()  # the form's "Run the pipeline"
    assert not app.exception, app.exception
    assert not app.error
    assert "from-home" in app.success[0].value and "finished" in app.success[0].value
    assert (runs / "from-home" / "tensors" / "projection_umap_2d_seed0.safetensors").is_file()  # precomputed
    assert "`from-home` · 4 tasks" in app.sidebar.caption[1].value
    assert "stages done: bias, extract, cluster, probe, act, sweep, refine, eval, project" in app.info[0].value
    app.text_input[1].input("from-home")
    app.button[-1].click().run()
    assert "already exists" in app.error[0].value


def test_every_page_draws_the_open_run(runs):
    app = opened()
    assert f"`{DASHBOARD_RUN}` · 8 tasks" in app.sidebar.caption[1].value
    expected = {
        "views/bias.py": ["Language of the answers to neutral prompts", "Per task: language of the sampled answers"],
        "views/probes.py": ["G-ACT probe: validation accuracy per layer", "ACT: best head's validation accuracy per layer",
                            "G-ACT recall by layer and cluster (validation)",
                            "G-ACT confusion matrix at layer 4"],
        "views/clusters.py": ["Difference vectors at layer 4 (PCA), coloured by cluster",
                              "Cluster separation by layer (silhouette)",
                              "Cosine similarity of the steering vectors, their layer's mean difference removed"],
        "views/steer.py": ["Steering success by layer and alpha (click a cell to steer with it)"],
        "views/report.py": [],
    }
    for page in PAGES:
        app.switch_page(page).run()
        assert not app.exception, (page, app.exception)
        assert not app.error, (page, [e.value for e in app.error])
        titles = plotly_titles(app)
        assert all(t in titles for t in expected[page]), (page, titles)
    assert [b.label for b in app.get("download_button")] == ["Metrics (CSV)", "Generations (JSONL)", "Steering vectors (safetensors)"]
    app.button[0].click().run()
    assert f"Report of run `{DASHBOARD_RUN}` ready" in app.success[0].value


def test_clusters_page_switches_layers_methods_and_colours(runs):
    app = opened()
    app.switch_page("views/clusters.py").run()
    app.slider[0].set_value(2).run()
    app.radio[2].set_value("probe").run()
    app.radio[0].set_value("umap").run()
    assert not app.exception
    assert "Difference vectors at layer 2 (UMAP), coloured by probe" in plotly_titles(app)


def steer_page(layers: list[int] | None = None) -> AppTest:
    app = opened()
    app.switch_page("views/steer.py").run()
    if layers is not None:
        strip(app).set_value(layers)
    return app.run()


def strip(app: AppTest):
    """The Steer page's layer strip."""
    return app.pills(key="layers_on")


def result_caption(app: AppTest) -> str:
    """The caption that says how the answers shown were made."""
    return next(c.value for c in app.caption if " on layers " in c.value)


def steered(app: AppTest) -> list[int]:
    return sorted(strip(app).value)


def test_steer_toggles_a_layer_and_shows_baseline_and_steered_code(runs):
    app = steer_page()
    chosen = RunResults(runs / DASHBOARD_RUN).chosen["layers"]
    assert steered(app) == sorted(chosen)  # the sweep's choice
    extra = min(set(range(8)) - set(chosen))
    strip(app).select(extra).run()
    assert [s.label for s in app.slider] == [f"alpha, layer {layer}" for layer in sorted({extra, *chosen})]
    app.button[0].click().run()
    assert not app.exception and not app.error
    headings = [m.value for m in app.markdown if m.value.startswith("####")]
    assert headings == ["#### Baseline · Python", "#### Steered · C++"]
    assert [c.language for c in app.code[:2]] == ["python", "cpp"]
    assert app.code[2].language == "diff"
    badges = [m.value for m in app.markdown if "-badge[" in m.value]
    assert len(badges) == 2 and "parse" in badges[0] and "compile" not in badges[0]  # Python: no C++ compiler verdict
    assert "compiles]" in badges[1] or "does not compile]" in badges[1]  # the steered C++ was given to g++


def test_steer_presets_and_the_whole_task_set(runs):
    app = steer_page()
    app.selectbox(key="preset").select("early layers").run()
    assert steered(app) == [0, 1]
    app.selectbox(key="preset").select("best layers from sweep").run()
    app.button[1].click().run()  # run the task set
    assert not app.exception
    assert "Whole task set, neutral prompts (8 tasks)" in plotly_titles(app)
    # Done: the controls are back (while it ran, Generate was disabled and this button was Stop).
    assert app.button[1].label == "Run the task set" and not app.button[0].disabled


def test_steer_captions_presets_and_alphas_tell_the_truth(runs):
    app = steer_page()
    app.button[0].click().run()  # generate, greedy, seed 0
    shown = result_caption(app)
    assert shown.startswith("G-ACT") and "greedy, seed 0" in shown
    app.radio(key="decoding").set_value("sampled")
    app.number_input[0].set_value(7)  # seed
    app.selectbox(key="method").set_value("mean_diff").run()
    assert result_caption(app) == shown  # the caption describes the answers shown, not the controls now
    app.selectbox(key="method").set_value("gact").run()

    app.selectbox(key="preset").select("best layers from sweep").run()
    chosen = steered(app)
    strip(app).set_value(sorted(set(chosen) ^ {0})).run()  # the user changes one layer by hand...
    app.selectbox(key="preset").select("best layers from sweep").run()  # ...and the same preset applies again
    assert steered(app) == chosen

    layer = chosen[0]
    app.slider(key=f"alpha_gact_{layer}").set_value(0.975).run()
    app.selectbox(key="method").set_value("mean_diff").run()
    app.selectbox(key="method").set_value("gact").run()
    assert app.slider(key=f"alpha_gact_{layer}").value == 0.975  # each method keeps its alphas


def test_a_report_and_answers_belong_to_their_run(runs, embedded):
    import shutil

    other = "dashboard-copy"
    if not (runs / other).exists():
        shutil.copytree(runs / DASHBOARD_RUN, runs / other)
    app = steer_page()
    app.button[0].click().run()
    app.switch_page("views/report.py").run()
    app.button[0].click().run()
    assert f"Report of run `{DASHBOARD_RUN}` ready" in app.success[0].value
    app.switch_page("views/home.py").run()  # Home: open the other run from the list
    app.selectbox[0].select(str(runs / other)).run()
    app.button(key="open_run").click().run()
    assert f"`{other}`" in app.sidebar.caption[1].value
    app.switch_page("views/report.py").run()
    assert not app.success  # the first run's report is not offered under the second's name
    assert "steer_result" not in app.session_state  # nor its answers


def test_probes_page_warns_about_a_tiny_run(runs, embedded):
    from steering.code.prompts import PromptSet
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    if not (runs / "tiny").exists():
        Pipeline(embedded, PromptSet.load().head(4), Run(runs / "tiny", create=True),
                 PipelineSettings(k=2, probe_epochs=50, max_new_tokens=16, adaptive=False)).run_all(
            stages=("extract", "cluster", "probe"))
    app = opened("tiny")
    app.switch_page("views/probes.py").run()
    assert not app.exception
    assert "not meaningful" in app.warning[0].value and "4 tasks" in app.warning[0].value


def test_steer_runs_faithful_act_on_its_own_heads(runs):
    results = RunResults(runs / DASHBOARD_RUN)
    assert results.act_choice, "the dashboard run fits ACT"
    app = steer_page()
    app.selectbox(key="method").set_value("act").run()
    app.selectbox(key="preset").select("ACT's heads").run()
    assert steered(app) == sorted(results.act_choice)
    assert {s.value for s in app.slider} == set(results.act_choice.values())
    app.button[0].click().run()
    assert not app.exception and not app.error
    assert result_caption(app).startswith("ACT (per-head, adaptive) on layers")


def test_pages_say_what_to_do_before_a_run_or_its_vectors_exist(runs, embedded):
    from steering.code.prompts import PromptSet
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    app = opened(run=None)
    for page in PAGES:
        app.switch_page(page).run()
        assert not app.exception
        assert "No run is open" in app.info[0].value
    Pipeline(embedded, PromptSet.load().head(3), Run(runs / "bias-only", create=True),
             PipelineSettings(bias_samples=1, max_new_tokens=16)).run_stage("bias")
    app = opened("bias-only")
    app.switch_page("views/steer.py").run()
    assert "No steering vectors yet" in app.error[0].value
    app.switch_page("views/bias.py").run()
    assert not app.exception and len(app.get("plotly_chart")) == 2


def test_two_sessions_steer_at_once_without_seeing_each_other(runs):
    """Each session's steered answer is the one it gets alone, while the other steers differently."""
    alpha = {0: 0.25, 6: 1.0}  # a weak push that leaves Python, a strong one that gives C++

    def session(layer: int) -> AppTest:
        app = steer_page([layer])
        app.slider[0].set_value(alpha[layer])
        return app

    def answers(app: AppTest) -> list[str]:
        app.button[0].click().run()
        assert not app.exception and not app.error, [e.value for e in app.error] + [str(e.value) for e in app.exception]
        return [c.value for c in app.code[:2]]

    alone = {layer: answers(session(layer)) for layer in alpha}
    assert alone[0][1] != alone[6][1]
    apps = {layer: session(layer) for layer in alpha}
    barrier, together = threading.Barrier(2), {}

    def work(layer):
        barrier.wait()
        together[layer] = answers(apps[layer])

    threads = [threading.Thread(target=work, args=(layer,)) for layer in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert together == alone


# --- the dashboard's half of the bad-input corpus (tests/test_bad_input.py has the command line's) ---

def _upload(content: bytes):
    def steps(root):
        app = opened(run=None)
        app.radio[0].set_value("upload a JSONL file").run()
        app.file_uploader[0].upload("tasks.jsonl", content).run()
        return app
    return steps


def _new_run(name: str):
    def steps(root):
        app = opened(run=None)
        app.text_input(key="new_run_name").input(name)
        app.button[-1].click().run()
        return app
    return steps


def _steer(prompt: str | None = None, preset: str | None = None):
    def steps(root):
        app = steer_page()
        if prompt is not None:
            app.text_area[0].input(prompt).run()
        if preset is not None:
            app.selectbox(key="preset").select(preset).run()
        app.button[0].click().run()
        return app
    return steps


def _model(ref: str):
    def steps(root):
        app = opened(run=None)
        return app.text_input(key="model_input").input(ref).run()
    return steps


def _address(**query):
    """The Steer page opened from a copied address with ``query``'s steering."""
    def steps(root):
        app = AppTest.from_file(APP, default_timeout=180)
        app.query_params.update(run=DASHBOARD_RUN, **query)
        app.run()
        app.switch_page("views/steer.py").run()
        return app
    return steps


def _page(run: str, page: str):
    def steps(root):
        app = opened(run)
        app.switch_page(f"views/{page}.py").run()
        return app
    return steps


BAD_DASHBOARD_CASES = [
    ("link-parent", lambda root: opened("../outside"), "is not a run name"),
    ("link-absolute", lambda root: opened("/tmp"), "is not a run name"),
    ("link-climbing", lambda root: opened("outside/../../outside"), "is not a run name"),
    ("link-300-characters", lambda root: opened("x" * 300), "is not a run name"),
    ("link-dot-dot", lambda root: opened(".."), "is not a run name"),
    ("link-not-a-run", lambda root: opened("no-such-run"), "is not a Steerscope run"),
    ("link-corrupt-settings", lambda root: opened("bad-settings"), "not valid JSON"),
    ("link-corrupt-database", lambda root: opened("bad-db"), "run.sqlite of run 'bad-db' cannot be read"),
    ("link-truncated-clusters", lambda root: opened("bad-clusters"), "clusters.safetensors is not a valid safetensors"),
    ("upload-not-utf8", _upload(b"\xff\xfe not utf-8"), "not UTF-8"),
    ("upload-incomplete-task", _upload(b'{"id": "a"}\n'), "a"),
    ("upload-too-big", _upload(b"x" * (9 * 2**20)), "limit"),
    ("upload-bad-json", _upload(b"{not json\n"), "line 1"),
    ("new-run-bad-name", _new_run("../escape"), "is not a run name"),
    ("new-run-existing-name", _new_run(DASHBOARD_RUN), "already exists"),
    ("model-missing", _model("/no/such/model/dir"), "no model directory"),
    ("steer-empty-prompt", _steer(prompt="   "), "The prompt is empty"),
    ("steer-all-layers-off", _steer(preset="all off"), "Every layer is off"),
    ("steer-prompt-too-long", _steer(prompt="Write a loop. " * 2000), "context"),
    # Issue 18: damaged runs on every page, inside the one error boundary (fragments included).
    ("link-null-pipeline", lambda root: opened("null-pipeline"), "'pipeline' must be an object, not NoneType"),
    ("link-text-model", lambda root: opened("text-model"), "'model' must be an object, not str"),
    *[(f"no-tensors-on-{page}", _page("no-tensors", page), "cannot be read") for page in ("clusters", "steer")],
    ("model-template-sandbox-escape", lambda root: _model(str(root / "templates" / "sandbox-escape"))(root), "sandbox forbids"),
    ("model-template-not-jinja", lambda root: _model(str(root / "templates" / "not-jinja"))(root), "not valid Jinja"),
    ("model-template-thirty-megabytes", lambda root: _model(str(root / "templates" / "thirty-megabytes"))(root),
     "may add at most"),
    ("upload-nested-thousands-deep", _upload(b"[" * 100_000 + b"]" * 100_000 + b"\n"), "nested too deeply"),
    ("upload-duplicate-id", _upload(b'{"id": "a"}\n{"id": "a"}\n'), "a"),
    ("link-alpha-beyond-the-limit", _address(method="gact", layers="1", alphas="1e308"), "out of range"),
    ("link-alpha-nan", _address(method="gact", layers="1", alphas="nan"), "out of range"),
    ("link-layer-beyond-the-model", _address(layers="99", alphas="0.5"), "layers: 99 out of range"),
    # Issue 31: each address parameter is read alone, named when it is dropped.
    ("link-layers-not-numbers", _address(layers="99,-1,a", alphas="1,1,1"), "layers: item 3, 'a', is not an integer"),
    ("link-layers-twice", _address(layers="6,6,6", alphas="1,2,3"), "layers: a layer is listed twice"),
    ("link-seed-superscript", _address(layers="1", alphas="0.5", seed="²"), "seed must be an integer from 0"),
    ("link-seed-beyond-numpy", _address(seed="99999999999999999999"), "got 99,999,999,999,999,999,999"),
    ("link-unknown-task", _address(task="no-such-task"), "task: 'no-such-task' is not a task"),
    ("link-unknown-method", _address(method="telepathy"), "method: 'telepathy' is not one this run can steer with"),
    ("link-to-a-linked-run", lambda root: opened("linked"), "is a link"),
    ("new-run-named-after-a-dangling-link", _new_run("dangling"), "is a link"),
]


@pytest.fixture
def bad_runs(dashboard_runs, tiny_qwen2_dir, tmp_path, monkeypatch):
    """A runs folder with a good run and damaged copies of it, beside a folder that looks like a run."""
    import shutil

    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, root / DASHBOARD_RUN)
    for name in ("bad-settings", "bad-db", "bad-clusters"):
        shutil.copytree(dashboard_runs / DASHBOARD_RUN, root / name)
    (root / "bad-settings" / "settings.json").write_text("{not json")
    (root / "bad-db" / "run.sqlite").write_bytes(b"garbage" * 100)
    clusters = root / "bad-clusters" / "tensors" / "clusters.safetensors"
    clusters.write_bytes(clusters.read_bytes()[:100])
    import json

    for name, change in (("null-pipeline", {"pipeline": None}), ("text-model", {"model": "text"})):
        shutil.copytree(dashboard_runs / DASHBOARD_RUN, root / name)
        settings = json.loads((root / name / "settings.json").read_text())
        (root / name / "settings.json").write_text(json.dumps({**settings, **change}))
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, root / "no-tensors")
    shutil.rmtree(root / "no-tensors" / "tensors")
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, tmp_path / "outside")
    (root / "linked").symlink_to(tmp_path / "outside")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("sandbox-escape", "not-jinja", "thirty-megabytes"):
        shutil.copytree(tiny_qwen2_dir, tmp_path / "templates" / name)
        (tmp_path / "templates" / name / "chat_template.jinja").write_text(HOSTILE_TEMPLATES[name][0])
    monkeypatch.setattr("views.common.RUNS_ROOT", root)
    return tmp_path


@pytest.mark.parametrize("case, steps, message", BAD_DASHBOARD_CASES, ids=[c[0] for c in BAD_DASHBOARD_CASES])
def test_the_dashboard_refuses_bad_input_inline(bad_runs, case, steps, message):
    before = hashes(bad_runs)
    app = steps(bad_runs)
    assert not app.exception, (case, app.exception)
    errors = [e.value for e in app.error]
    assert errors and any(message in e for e in errors), (case, errors)
    assert all(str(bad_runs) not in e for e in errors)  # names, never server paths
    assert hashes(bad_runs) == before  # nothing written, the good run byte-identical
    app.switch_page("views/clusters.py").run()  # and the dashboard keeps working
    assert not app.exception


def test_home_does_not_count_a_stage_whose_files_are_gone(bad_runs):
    """Issue 31: a run whose tensors were deleted used to be listed with every stage done."""
    app = opened("no-tensors")
    assert not app.exception
    done = next(i.value for i in app.info if i.value.startswith("Open run:")).split("stages done: ")[1]
    assert "bias" in done and not {"extract", "cluster", "probe", "refine"} & set(done.split(", "))
    assert any("files are gone" in w.value and "clusters.safetensors" in w.value for w in app.warning)


def test_steer_shows_the_references_beside_a_scheduled_answer(runs):
    """Issue 16: the schedule is a control, and the references can stand beside the steered answer."""
    app = steer_page()
    assert app.selectbox(key="schedule").value == RunResults(runs / DASHBOARD_RUN).selection()["gact_unrefined"]["schedule"]
    app.selectbox(key="schedule").select("window").run()
    app.checkbox(key="ask_too").check().run()  # a third row of the same batch
    app.checkbox(key="show_prefilled").check().run()  # decoded after the three
    app.button[0].click().run()
    assert not app.exception and not app.error
    headings = [m.value.split(" · ")[0] for m in app.markdown if m.value.startswith("####")]
    assert headings == ["#### Baseline", "#### Steered", "#### Asked explicitly", "#### Prefilled fence"]
    assert "first 8 tokens" in result_caption(app)
    assert any("prompt in the target language" in c.value for c in app.caption)  # the run's table, with references


def test_probes_page_leads_from_a_failure_to_the_answers(runs):
    app = opened()
    app.switch_page("views/probes.py").run()
    app.radio[1].set_value("all").run()  # training tasks too: some prompt fails at some layer
    for layer in range(8):
        app.select_slider[0].set_value(layer).run()
        if not app.success:
            break
    assert not app.exception and not app.success, "the probe fails somewhere, or this test shows nothing"
    assert any(m.value.startswith("#### What steering wrote") for m in app.markdown)
    assert any(m.value.startswith("**steered · ") for m in app.markdown)  # the answer steering wrote, first
    assert app.code[-1].value  # and its code


def test_a_bad_address_parameter_leaves_the_good_ones(runs):
    """Issue 31: ``seed=²`` used to drop the valid layers and alphas too."""
    app = AppTest.from_file(APP, default_timeout=180)
    app.query_params.update(run=DASHBOARD_RUN, method="gact", layers="2,5", alphas="0.5,0.25", seed="²")
    app.run()
    app.switch_page("views/steer.py").run()
    assert not app.exception
    assert any("seed must be an integer" in e.value for e in app.error)
    assert app.session_state.layers_on == [2, 5]
    assert [app.session_state["alpha_gact_2"], app.session_state["alpha_gact_5"]] == [0.5, 0.25]
    big = AppTest.from_file(APP, default_timeout=180)  # any seed the limits allow fits the page's widget
    big.query_params.update(run=DASHBOARD_RUN, seed=str(2**32 - 1))
    big.run()
    big.switch_page("views/steer.py").run()
    assert not big.exception and not big.error and big.session_state.seed == 2**32 - 1


def test_the_address_keeps_the_run_and_the_steer_view(runs):
    """A copied address reopens the same run and Steer view; page links no longer drop the run."""
    app = opened()
    app.switch_page("views/steer.py").run()
    assert app.query_params["run"] == [DASHBOARD_RUN] or app.query_params["run"] == DASHBOARD_RUN
    strip(app).select(1).run()
    query = {k: (v[0] if isinstance(v, list) else v) for k, v in app.query_params.items()}
    assert "1" in query["layers"].split(",")

    copied = AppTest.from_file(APP, default_timeout=180)
    for key, value in {**query, "seed": "5"}.items():
        copied.query_params[key] = value
    copied.run()
    copied.switch_page("views/steer.py").run()
    assert not copied.exception
    layers = [int(x) for x in query["layers"].split(",")]
    assert steered(copied) == sorted(layers)
    assert copied.number_input(key="seed").value == 5 and copied.selectbox(key="task").value == query["task"]

    bad = AppTest.from_file(APP, default_timeout=180)
    for key, value in {"run": DASHBOARD_RUN, "layers": "99", "alphas": "1"}.items():
        bad.query_params[key] = value
    bad.run()
    bad.switch_page("views/steer.py").run()
    assert any("not applied" in e.value for e in bad.error) and not bad.exception


def test_steer_opens_on_the_steering_the_run_was_judged_with(runs, embedded):
    """Issue 17: the page starts from the evaluated layers and alphas (the selection's margin
    included), its schedule and token budget, on a task where asking explicitly works; alpha's
    scale is said in words."""
    from steering.interface.actions import RunSteering

    results = RunResults(runs / DASHBOARD_RUN)
    evaluated = RunSteering(runs / DASHBOARD_RUN, embedded).evaluated("gact")
    app = steer_page()
    assert steered(app) == sorted(evaluated)
    assert [app.slider(key=f"alpha_gact_{layer}").value for layer in sorted(evaluated)] == \
        pytest.approx([evaluated[layer] for layer in sorted(evaluated)])
    assert app.selectbox(key="schedule").value == results.selection()["gact_unrefined"]["schedule"]
    assert app.number_input(key="max_tokens").value == (results.budget("heldout") or results.budget("neutral"))["tokens"]
    assert app.selectbox(key="task").value == (results.showcase_task("gact") or results.prompts.ids[0])
    scale = next(c.value for c in app.caption if c.value.startswith("Scale:"))
    assert "cluster vectors" in scale and all(f"of layer {layer}'s mean residual norm" in scale for layer in evaluated)


def test_steer_says_why_an_answer_stopped_when_the_scores_turn_nan(runs, monkeypatch):
    """Issue 18: non-finite scores stop the answers, and the page says why (the command line
    prints the same reason: tests/test_generation.py)."""
    from conftest import wrap_forward

    wrap_forward(monkeypatch, lambda real, *a, **k: (lambda out: (out[0] * float("nan"), out[1]))(real(*a, **k)))
    app = steer_page()
    app.button[0].click().run()
    assert not app.exception and not app.error
    badges = [m.value for m in app.markdown if "NaN or infinite" in m.value]
    assert len(badges) == 2 and all("stopped after 0 tokens" in b for b in badges)


def test_steer_exports_the_steering_as_a_llama_cpp_control_vector(runs, embedded, tmp_path):
    """Issue 20: the Steer page's steering as a GGUF control vector, refused until the user
    accepts what llama.cpp cannot follow, then the file the library writes for the same steering."""
    from steering.interface.actions import RunSteering
    from steering.pipeline.control_vectors import ControlVector

    app = steer_page()
    prepare = next(b for b in app.button if b.label == "Prepare the control vector")
    prepare.click().run()
    assert len(app.error) == 1 and not app.get("download_button")
    assert app.error[0].value.startswith("Cannot export: llama.cpp cannot express this steering: Steerscope steers "
                                         "from the last prompt token on")
    app.checkbox(key="gguf_accept").check().run()
    next(b for b in app.button if b.label == "Prepare the control vector").click().run()
    assert not app.exception and not app.error
    assert [b.label for b in app.get("download_button")] == ["Download control vector (GGUF)"]
    assert any("llama.cpp steers every prompt token too" in w.value for w in app.warning)
    path = tmp_path / "page.gguf"
    path.write_bytes(app.session_state["gguf"]["data"])
    shown = ControlVector.read(path)
    steering = RunSteering(runs / DASHBOARD_RUN, embedded)
    evaluated = steering.evaluated("gact")
    steerer = steering.steerer("gact", list(evaluated), list(evaluated.values()), schedule=steering.chosen_schedule("gact"))
    expected = steering.control_vector(steerer, accept_inexact=True)
    assert sorted(shown.directions) == sorted(expected.directions) == sorted(evaluated)
    assert all(torch.allclose(shown.directions[b], expected.directions[b], atol=1e-6) for b in evaluated)


def test_compare_page_draws_three_models_and_refuses_a_mismatch(compare_runs, monkeypatch, tmp_path):
    from conftest import COMPARED_RUNS

    monkeypatch.setattr("views.common.RUNS_ROOT", compare_runs)
    app = AppTest.from_file(APP, default_timeout=180)
    app.query_params["runs"] = list(COMPARED_RUNS)  # the page's address: the comparison is a link
    app.switch_page("views/compare.py").run()
    assert not app.exception and not app.error
    assert app.multiselect(key="runs").value == list(COMPARED_RUNS)
    titles = plotly_titles(app)
    assert any(t.startswith("G-ACT: validation accuracy by depth") for t in titles)
    assert any(t.startswith("The sweep: each layer steered alone") for t in titles)
    groups = [d.value.columns for d in app.dataframe if d.value.columns.nlevels == 2]  # the evaluation: a group per model
    assert len(groups) == 1 and {"steerscope-demo", "model-4", "model-6"} <= set(groups[0].get_level_values(0))
    assert len(app.code) >= 2 * len(COMPARED_RUNS)  # every model's baseline and steered answer

    mismatch = tmp_path / "runs"
    shutil.copytree(compare_runs / DASHBOARD_RUN, mismatch / DASHBOARD_RUN)
    shutil.copytree(compare_runs / COMPARED_RUNS[1], mismatch / "java")
    settings = mismatch / "java" / "settings.json"
    settings.write_text(settings.read_text().replace('"target": "cpp"', '"target": "java"'))
    monkeypatch.setattr("views.common.RUNS_ROOT", mismatch)
    app = AppTest.from_file(APP, default_timeout=180)
    app.query_params["runs"] = [DASHBOARD_RUN, "java"]
    app.switch_page("views/compare.py").run()
    assert not app.exception
    assert app.error[0].value == (f"These runs cannot be compared: runs {DASHBOARD_RUN} and java differ in target: cpp "
                                  "and java; a comparison needs the same target")
