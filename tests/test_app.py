from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_home_page_loads_the_embedded_model_and_greets():
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    assert "Hello!" in app.success[0].value and "steerscope-demo" in app.success[0].value
    metrics = {m.label: m.value for m in app.metric}
    assert int(metrics["Layers"]) >= 8 and metrics["dtype"] == "float32"


def test_home_page_reports_a_bad_model_inline():
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.sidebar.text_input[0].input("/no/such/model/dir").run()
    assert not app.exception
    assert "no model directory" in app.error[0].value
