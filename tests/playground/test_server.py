"""The playground's server in-process: every endpoint and message type, and bad input."""

import re

import numpy as np
import pytest

import deltaprop as dp

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from deltaprop.playground.server import MAX_UPLOAD, create_app  # noqa: E402
from deltaprop.playground.session import Session  # noqa: E402
from deltaprop.playground.settings import Settings, SettingsError  # noqa: E402

SMALL = {"data": "moons", "samples": 120, "hidden": [4], "activation": "relu", "batch_size": 16}


CSV = {"content-type": "text/csv"}
JSON = {"content-type": "application/json"}
WS = "ws://127.0.0.1:8765"  # the test client names no host of its own for sockets


@pytest.fixture
def client():
    with TestClient(create_app(port=8765), base_url="http://127.0.0.1:8765") as test_client:
        yield test_client


def new_session(client, **settings):
    response = client.post("/api/sessions", json={**SMALL, **settings})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "deltaprop playground" in page.text
    assert "/static/playground.js" in page.text and "http" not in page.text.split("<body>")[1]
    assert "function drawNetwork" in client.get("/static/playground.js").text
    assert client.get("/static/playground.css").status_code == 200


def test_options_list_the_choices_and_defaults(client):
    options = client.get("/api/options").json()
    assert options["data"][0] == "spirals" and "iris" in options["data"]
    assert "relu" in options["activations"] and "Adam" in options["optimizers"]
    assert options["losses"][0] == "auto" and options["inits"][0] == "auto"
    assert options["defaults"]["hidden"] == [8, 8]


def test_a_session_starts_with_a_snapshot_of_the_engine(client):
    created = new_session(client)
    snapshot = created["snapshot"]
    assert snapshot["epoch"] == 0 and snapshot["widths"] == [2, 4, 1]
    assert snapshot["classes"] == ["0", "1"] and snapshot["features"] == ["x1", "x2"]
    plane = snapshot["plane"]
    assert len(plane["units"]) == 1 and len(plane["units"][0]) == 4
    assert len(plane["units"][0][0]) == plane["grid"] ** 2
    assert len(plane["points"]) == 90 and len(plane["labels"]) == 90  # the training rows
    state = client.app.state.playground.session(created["id"])
    np.testing.assert_allclose(
        snapshot["layers"][0]["weight"], state.model.layers[0].W.value, atol=1e-5
    )
    assert client.get(f"/api/sessions/{created['id']}").json()["epoch"] == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"data": "mnist"}, "data: unknown data set 'mnist'"),
        ({"hidden": "8,x"}, "hidden: a list of layer widths >= 1, got '8,x'"),
        ({"hidden": [0]}, "hidden: a list of layer widths >= 1"),
        ({"hidden": [4000, 4000]}, "parameters; at most 5,000,000"),
        ({"activation": "swish"}, "activation: unknown activation 'swish'"),
        ({"lr": -1}, "lr: a number from 1e-07 to 10, got -1"),
        ({"lr": "fast"}, "lr: a number from 1e-07 to 10, got 'fast'"),
        ({"batch_size": 0}, "batch_size: an integer from 1 to 100000, got 0"),
        ({"dropout": 1.5}, "dropout: a number from 0 to 0.95"),
        ({"loss": "MeanSquaredError"}, "is a regression loss, but the task is classification"),
        ({"colour": "red"}, "unknown settings ['colour']"),
    ],
)
def test_bad_settings_are_refused_with_the_field_and_value(client, settings, message):
    response = client.post("/api/sessions", json={**SMALL, **settings})
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_body_that_is_not_json_is_refused(client):
    response = client.post("/api/sessions", content=b"{not json", headers=JSON)
    assert response.status_code == 400 and "not JSON" in response.json()["error"]


def test_explain_returns_the_engines_explanation_of_a_training_row(client):
    created = new_session(client)
    response = client.get(f"/api/sessions/{created['id']}/explain", params={"index": 3})
    explanation = response.json()["explanation"]
    assert explanation["schema"] == "deltaprop-explanation/1" and explanation["ok"]
    session = client.app.state.playground.session(created["id"])
    x = session.X_train[3:4].astype(np.float64)
    forward = next(s for s in explanation["steps"] if s["kind"] == "forward")
    shown = next(p for p in forward["parts"] if p.get("key") == "x")
    np.testing.assert_allclose(shown["data"], x[0])
    for bad in ("-1", "90", "x"):
        answer = client.get(f"/api/sessions/{created['id']}/explain", params={"index": bad})
        assert answer.status_code == 400 and "index" in answer.json()["error"]
    assert client.get("/api/sessions/nope/explain").status_code == 404


def test_the_model_file_and_the_code_rebuild_the_network(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the exported code saves playground.safetensors here
    created = new_session(client)
    key = created["id"]
    with client.websocket_connect(f"{WS}/api/sessions/{key}/ws") as socket:
        for _ in range(3):
            socket.send_json({"type": "step"})
            assert socket.receive_json()["type"] == "snapshot"
    model = client.get(f"/api/sessions/{key}/model")
    assert "attachment" in model.headers["content-disposition"]
    path = tmp_path / "m.safetensors"
    path.write_bytes(model.content)
    net, loss = dp.load(path)
    session = client.app.state.playground.session(key)
    np.testing.assert_array_equal(net.layers[0].W.value, session.model.layers[0].W.value)
    assert dp.load_preprocessor(path).columns == ("x1", "x2")
    code = client.get(f"/api/sessions/{key}/code").text
    namespace: dict = {}
    exec(compile(code, "playground.py", "exec"), namespace)  # trains 3 epochs, as the session
    for ours, theirs in zip(namespace["net"].parameters(), session.model.parameters(), strict=True):
        np.testing.assert_array_equal(ours.value, theirs.value)


def test_the_socket_steps_plays_pauses_and_explains(client):
    key = new_session(client)["id"]
    with client.websocket_connect(f"{WS}/api/sessions/{key}/ws") as socket:
        socket.send_json({"type": "step"})
        first = socket.receive_json()
        assert first["type"] == "snapshot" and first["epoch"] == 1
        assert set(first["history"]) >= {"loss", "accuracy", "test_loss", "test_accuracy"}
        socket.send_json({"type": "play"})
        epochs = [socket.receive_json()["epoch"] for _ in range(3)]
        assert epochs == sorted(epochs) and epochs[-1] >= 4
        socket.send_json({"type": "pause"})
        while (message := socket.receive_json())["type"] == "snapshot":
            pass
        assert message == {"type": "paused", "reason": "asked"}
        socket.send_json({"type": "explain", "index": 0})
        explained = socket.receive_json()
        assert explained["type"] == "explanation" and explained["explanation"]["ok"]
        socket.send_json({"type": "explain", "index": 10_000})
        assert "index: a training row from 0 to 89" in socket.receive_json()["message"]
        socket.send_json({"type": "jump"})
        assert "unknown message" in socket.receive_json()["message"]
        socket.send_text("not json")
        assert socket.receive_json() == {"type": "error", "message": "messages are JSON"}
        socket.send_text("[" * 100_000 + "]" * 100_000)  # too deep to parse: the socket stays
        assert socket.receive_json() == {"type": "error", "message": "messages are JSON"}
        socket.send_bytes(b'{"type": "step"}')
        assert "not binary frames" in socket.receive_json()["message"]
        socket.send_json({"type": "step"})
        assert socket.receive_json()["type"] == "snapshot"


def test_a_socket_for_an_unknown_session_is_told_and_closed(client):
    with client.websocket_connect(f"{WS}/api/sessions/nope/ws") as socket:
        assert socket.receive_json() == {"type": "error", "message": "no such session"}


def test_uploads_become_data_sets_and_are_checked(client):
    csv = "a,b,kind\n" + "".join(
        f"{i % 7},{i % 5},{'cat' if i % 2 else 'dog'}\n" for i in range(60)
    )
    response = client.post(
        "/api/uploads",
        params={"name": "pets.csv", "target": "kind"},
        content=csv.encode(),
        headers=CSV,
    )
    assert response.status_code == 200, response.text
    upload = response.json()
    assert upload["columns"] == ["a", "b"] and upload["rows"] == 60
    assert upload["upload"] in client.get("/api/options").json()["data"]
    snapshot = new_session(client, data=upload["upload"], target="kind")["snapshot"]
    assert snapshot["classes"] == ["cat", "dog"]
    missing = client.post(
        "/api/uploads", params={"target": "species"}, content=csv.encode(), headers=CSV
    )
    assert missing.status_code == 400 and "has no column 'species'" in missing.json()["error"]
    big = client.post("/api/uploads", content=b"x" * (MAX_UPLOAD + 1), headers=CSV)
    assert big.status_code == 413 and "at most 2,000,000" in big.json()["error"]
    latin = client.post("/api/uploads", content=b"a,y\n\xe9,1\n", headers=CSV)
    assert latin.status_code == 400 and "not UTF-8" in latin.json()["error"]


def test_sessions_are_independent_per_tab(client):
    a, b = new_session(client)["id"], new_session(client)["id"]
    with client.websocket_connect(f"{WS}/api/sessions/{a}/ws") as socket:
        socket.send_json({"type": "step"})
        socket.receive_json()
    assert client.get(f"/api/sessions/{a}").json()["epoch"] == 1
    assert client.get(f"/api/sessions/{b}").json()["epoch"] == 0


def test_regression_and_wide_layers_are_drawn_summarized():
    session = Session(Settings(data="diabetes", hidden=[40]), {})
    session.advance(1)
    snapshot = session.snapshot()
    assert snapshot["task"] == "regression" and snapshot["plane"] is None
    assert snapshot["widths"] == [10, 40, 1] and len(snapshot["layers"][0]["weight"]) == 12
    assert "r2" in snapshot["history"]
    with pytest.raises(SettingsError, match="is a classification loss"):
        Session(Settings(data="diabetes", loss="SoftmaxCrossEntropy"), {})


def test_the_command_starts_the_server_on_the_address_asked(monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from deltaprop.cli import app

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: started.update(kw))
    monkeypatch.setattr("webbrowser.open", lambda url: started.setdefault("opened", url))
    result = CliRunner().invoke(app, ["playground", "--port", "8799", "--data", "iris"])
    assert result.exit_code == 0, result.output
    assert "deltaprop playground: http://127.0.0.1:8799/" in result.output
    assert started["host"] == "127.0.0.1" and started["port"] == 8799
    assert started["opened"] == "http://127.0.0.1:8799/"
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: started.update(app=application))
    result = CliRunner().invoke(app, ["playground", "--host", "0.0.0.0", "--no-browser"])
    assert "listening on 0.0.0.0, reachable from the network" in result.output
    token = re.search(r"http://0\.0\.0\.0:8765/\?token=([\w-]{32})", result.output).group(1)
    with TestClient(started["app"], base_url="http://192.0.2.7:8765") as remote:
        assert remote.get("/api/options").status_code == 403  # no token: nothing answers
        assert remote.get("/?token=wrong").status_code == 403
        page = remote.get(f"/?token={token}")
        assert page.status_code == 200 and "deltaprop_token=" in page.headers["set-cookie"]
        assert remote.get("/api/options").status_code == 200  # the cookie the page keeps
    bad = CliRunner().invoke(app, ["playground", "--data", "mnist"])
    assert bad.exit_code == 2 and "unknown data set 'mnist'" in bad.output
    assert bad.output.count("\n") == 1


def test_a_port_in_use_is_a_one_line_error():
    import socket

    from typer.testing import CliRunner

    from deltaprop.cli import app

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["playground", "--port", str(port), "--no-browser"])
    assert result.exit_code == 2 and f"{port} is in use" in result.output


def test_the_command_takes_a_csv_file(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from deltaprop.cli import app

    path = tmp_path / "my.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(40)))
    captured = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: captured.update(app=application))
    result = CliRunner().invoke(
        app, ["playground", "--data", str(path), "--target", "label", "--no-browser"]
    )
    assert result.exit_code == 0, result.output
    with TestClient(captured["app"], base_url="http://127.0.0.1:8765") as client:
        defaults = client.get("/api/options").json()["defaults"]
        assert defaults["data"] == "upload: my.csv" and defaults["target"] == "label"
        created = client.post("/api/sessions", json={"data": defaults["data"], "target": "label"})
        assert created.json()["snapshot"]["classes"] == ["a", "b"]


# --- the page's locks: Host, Origin, content types --------------------------------------------


def test_another_host_name_is_refused_dns_rebinding(client):
    for host in ("evil.example:8765", "127.0.0.1.evil.example", "localhost:9999"):
        response = client.get("/api/options", headers={"host": host})
        assert response.status_code == 421, host
        assert "is not this machine's playground" in response.json()["error"]
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "localhost"):
        assert client.get("/api/options", headers={"host": host}).status_code == 200, host


def test_a_cross_site_post_is_refused(client):
    evil = {"origin": "http://evil.example"}
    sent = client.post("/api/sessions", json=SMALL, headers=evil)
    assert sent.status_code == 403 and "'http://evil.example'" in sent.json()["error"]
    # a form of another site can send text/plain without asking: refused whatever its Origin
    plain = client.post(
        "/api/sessions", content=b'{"data": "xor"}', headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 403 and "'text/plain'" in plain.json()["error"]
    upload = client.post(
        "/api/uploads", content=b"a,y\n1,2\n", headers={"content-type": "text/plain"}
    )
    assert upload.status_code == 403
    own = client.post("/api/sessions", json=SMALL, headers={"origin": "http://127.0.0.1:8765"})
    assert own.status_code == 200


def test_a_socket_from_another_site_is_refused(client):
    key = client.post("/api/sessions", json=SMALL).json()["id"]
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(
            f"{WS}/api/sessions/{key}/ws", headers={"origin": "http://evil.example"}
        ) as socket:
            socket.receive_json()
    assert refused.value.code == 1008
    with client.websocket_connect(
        f"{WS}/api/sessions/{key}/ws", headers={"origin": "http://127.0.0.1:8765"}
    ) as socket:
        socket.send_json({"type": "step"})
        assert socket.receive_json()["epoch"] == 1


def test_the_page_may_not_ask_for_thousands_of_layers(client):
    response = client.post("/api/sessions", json={**SMALL, "hidden": [1] * 12_000})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "hidden: 12000 layers; at most 32 are drawn and trained at an interactive pace"
    )


def test_memory_is_bounded_uploads_settings_and_sessions(client, monkeypatch):
    import deltaprop.playground.server as server
    import deltaprop.playground.session as session_module

    csv = "a,b,y\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(60))
    monkeypatch.setattr(server, "MAX_UPLOADS", 2)
    names = [
        client.post(
            "/api/uploads", params={"target": "y"}, content=csv.encode(), headers=CSV
        ).json()["upload"]
        for _ in range(3)
    ]
    state = client.app.state.playground
    assert list(state.uploads) == names[1:]  # the oldest went
    big = client.post("/api/sessions", content=b"{" + b" " * 70_000 + b"}", headers=JSON)
    assert big.status_code == 413 and "settings: more than 64,000 bytes" in big.json()["error"]
    monkeypatch.setattr(session_module, "MAX_DATA_BYTES", 1000)
    refused = client.post("/api/sessions", json=SMALL)
    assert refused.status_code == 400 and "MB of features" in refused.json()["error"]
    monkeypatch.setattr(session_module, "MAX_DATA_BYTES", 64_000_000)
    keys = [client.post("/api/sessions", json=SMALL).json()["id"] for _ in range(3)]
    one = state.sessions[keys[-1]].nbytes
    monkeypatch.setattr(server, "MAX_SESSIONS_BYTES", int(2.5 * one))
    keys.append(client.post("/api/sessions", json=SMALL).json()["id"])
    assert list(state.sessions) == keys[-2:]  # the least recently used went first
