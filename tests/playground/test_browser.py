"""The playground in a real headless browser (Debian's Chromium, driven by Selenium): build a
network, train a few epochs, step through one sample's back propagation, and check what the page
shows against the engine's numbers."""

import json
import shutil
import socket
import threading
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from deltaprop.playground.server import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Chromium and ChromeDriver are not installed (Debian: apt-get install chromium "
        "chromium-driver; .ci/run installs them)",
    ),
]


@pytest.fixture(scope="module")
def server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1100",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def api(server, path):
    with urllib.request.urlopen(server + path) as response:
        return json.load(response)


def fmt(value):
    """The page's number format (4 significant digits)."""
    return f"{float(f'{value:.4g}'):g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else None


def test_train_and_step_through_back_propagation_in_the_page(server, browser):
    wait = WebDriverWait(browser, 20)
    browser.get(server + "/")
    wait.until(lambda d: d.find_element(By.ID, "data").get_attribute("value") == "spirals")
    Select(browser.find_element(By.ID, "activation")).select_by_value("relu")
    hidden = browser.find_element(By.ID, "hidden")
    hidden.clear()
    hidden.send_keys("0")
    browser.find_element(By.ID, "build").click()  # a bad setting: the server's message is shown
    wait.until(lambda d: "hidden: a list of layer widths" in d.find_element(By.ID, "message").text)
    hidden.clear()
    hidden.send_keys("6")
    browser.find_element(By.ID, "build").click()
    status = browser.find_element(By.ID, "status")
    wait.until(lambda d: status.get_attribute("data-session"))
    key = status.get_attribute("data-session")
    assert browser.find_element(By.ID, "message").text == ""

    # train three epochs with the Step button; the page shows the engine's numbers
    for epoch in (1, 2, 3):
        wait.until(lambda d: d.find_element(By.ID, "step").is_enabled())
        browser.find_element(By.ID, "step").click()
        wait.until(lambda d, e=epoch: status.get_attribute("data-epoch") == str(e))
    snapshot = api(server, f"/api/sessions/{key}")
    assert snapshot["epoch"] == 3
    assert f"test loss {fmt(snapshot['history']['test_loss'][-1])}" in status.text
    edges = browser.find_elements(By.CSS_SELECTOR, "#network line.edge")
    assert len(edges) == 2 * 6 + 6 * 1
    for j, row in enumerate(snapshot["layers"][0]["weight"]):
        for i, w in enumerate(row):
            stroke = browser.find_element(By.ID, f"edge-1-{j}-{i}").get_attribute("stroke")
            assert stroke == ("#1f77b4" if w >= 0 else "#e4670a")

    # one sample's back propagation, step by step, against dp.explain's numbers
    browser.find_element(By.ID, "explain").click()
    title = browser.find_element(By.ID, "step-title")
    wait.until(lambda d: title.text == "The chain rule")
    engine = api(server, f"/api/sessions/{key}/explain?index=0")["explanation"]
    seen = {}
    for _ in engine["steps"]:
        seen[title.text] = browser.find_element(By.ID, "step-body").text
        step = next(s for s in engine["steps"] if title.text.endswith(s["title"]))
        if step["kind"] == "output-error":
            delta = next(p for p in step["parts"] if p.get("key") == "delta2")["data"][0]
            assert browser.find_element(By.ID, "ann-2-0").text == f"δ={fmt(delta)}"
        if step["kind"] == "activation":
            gates = next(p for p in step["parts"] if p.get("key") == "local1")["data"]
            closed = browser.find_elements(By.CSS_SELECTOR, "#network rect.unit.closed")
            assert len(closed) == gates.count(0.0)
            assert len(browser.find_elements(By.CSS_SELECTOR, "#network rect.unit.open")) == (
                gates.count(1.0)
            )
        for part in step["parts"]:
            if part["type"] == "value":
                row = browser.find_element(By.ID, f"value-{part['key']}")
                np.testing.assert_allclose(
                    json.loads(row.get_attribute("data-values")), part["data"], rtol=1e-12
                )
                if part["check"]:
                    assert "✓ finite differences agree" in row.text
        browser.find_element(By.ID, "next").click()
    assert "Step 1: Gradient at output (layer 2 error)" in seen
    assert (
        "∂L/∂W⁽²⁾ = δ⁽²⁾ (a⁽¹⁾)ᵀ" in seen["Step 2: Gradients for layer 2 parameters (W⁽²⁾, b⁽²⁾)"]
    )
    assert "ReLU′(z⁽¹⁾) = 1[z > 0]" in seen["Step 4: Gradient through activation (ReLU)"]

    # play, then pause
    browser.find_element(By.ID, "play").click()
    wait.until(lambda d: int(status.get_attribute("data-epoch")) >= 6)
    browser.find_element(By.ID, "play").click()
    wait.until(lambda d: d.find_element(By.ID, "play").text == "Play")
    export = browser.find_element(By.ID, "export-code").get_attribute("href")
    assert export.endswith(f"/api/sessions/{key}/code")


SCREENS = [(1280, 800), (1920, 1080)]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    """Where the screenshots of the test run go: $DELTAPROP_SCREENSHOTS, else a temporary
    directory (its path is printed)."""
    import os
    from pathlib import Path

    chosen = os.environ.get("DELTAPROP_SCREENSHOTS")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"playground screenshots: {directory}")
    return directory


def build(browser, wait, server, data="moons", steps=3, **fields):
    browser.get(server + "/")
    wait.until(lambda d: d.find_element(By.ID, "data").get_attribute("value") == "spirals")
    Select(browser.find_element(By.ID, "data")).select_by_value(data)
    for name, value in fields.items():
        field = browser.find_element(By.ID, name)
        field.clear()
        field.send_keys(value)
    browser.find_element(By.ID, "build").click()
    status = browser.find_element(By.ID, "status")
    wait.until(lambda d: status.get_attribute("data-session"))
    for epoch in range(1, steps + 1):
        wait.until(lambda d: d.find_element(By.ID, "step").is_enabled())
        browser.find_element(By.ID, "step").click()
        wait.until(lambda d, e=epoch: status.get_attribute("data-epoch") == str(e))
    return status, status.get_attribute("data-session")


def box(browser, element_id):
    return browser.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom];",
        element_id,
    )


@pytest.mark.parametrize("size", SCREENS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screen_fits_and_is_kept_as_a_screenshot(server, browser, screenshots, size):
    width, height = size
    browser.set_window_size(width, height)
    wait = WebDriverWait(browser, 20)
    status, _ = build(browser, wait, server)
    inner = browser.execute_script("return window.innerWidth")
    scroll = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= inner, f"the page is {scroll} px wide in a {inner} px window"
    controls, picture, plots = (box(browser, i) for i in ("controls", "picture", "plots"))
    assert controls[2] <= picture[0] and picture[2] <= plots[0] <= plots[2] <= inner
    assert box(browser, "network")[2] - box(browser, "network")[0] >= 500  # readable
    main = screenshots / f"playground-{width}x{height}.png"
    assert browser.save_screenshot(str(main))
    browser.find_element(By.ID, "explain").click()
    title = browser.find_element(By.ID, "step-title")
    wait.until(lambda d: title.text == "The chain rule")
    while not title.text.startswith("Step 2"):
        browser.find_element(By.ID, "next").click()
    browser.execute_script("document.getElementById('backprop').scrollIntoView()")
    steps = screenshots / f"playground-backprop-{width}x{height}.png"
    assert browser.save_screenshot(str(steps))
    backprop = box(browser, "backprop")
    assert backprop[2] <= inner
    for path in (main, steps):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def pixel(browser, canvas, x, y):
    return browser.execute_script(
        "return Array.from(document.getElementById(arguments[0]).getContext('2d')"
        ".getImageData(arguments[1], arguments[2], 1, 1).data);",
        canvas,
        int(x),
        int(y),
    )


def test_heat_maps_are_smooth_every_unit_has_one_and_test_rows_are_rings(server, browser):
    browser.set_window_size(1400, 1100)
    wait = WebDriverWait(browser, 20)
    status, key = build(browser, wait, server, data="moons", steps=5, hidden="6")
    snapshot = api(server, f"/api/sessions/{key}")
    images = browser.find_elements(By.CSS_SELECTOR, "#network image.heat")
    assert len(images) == 2 + 6 + 1  # inputs, hidden units and the output unit
    output = browser.find_element(By.CSS_SELECTOR, "#unit-2-0 image.heat")
    colours = browser.execute_script(
        """const image = new Image();
        image.src = arguments[0];
        await image.decode();
        const canvas = document.createElement("canvas");
        canvas.width = image.width; canvas.height = image.height;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        const data = context.getImageData(0, 0, image.width, image.height).data;
        const seen = new Set();
        for (let k = 0; k < data.length; k += 4) seen.add(data.slice(k, k + 3).join(","));
        const lattice = new Set(arguments[1].map((v) => colour(v / 100)));
        return [image.width, seen.size, lattice.size];""",
        output.get_attribute("href"),
        snapshot["plane"]["output"][0],
    )
    # interpolated between the lattice's points, not drawn as its squares: the picture holds
    # shades between the lattice's colours, many more than the lattice has
    assert colours[0] > snapshot["plane"]["grid"] and colours[1] > 2 * colours[2], colours
    # a test row far from every training row is drawn as a ring: white inside
    plane = snapshot["plane"]
    train, test = np.array(plane["points"]), np.array(plane["test_points"])
    far = max(range(len(test)), key=lambda i: np.min(np.linalg.norm(train - test[i], axis=1)))
    (x0, x1), (y0, y1) = plane["x"], plane["y"]
    cx = (test[far][0] - x0) / (x1 - x0) * 300
    cy = 300 - (test[far][1] - y0) / (y1 - y0) * 300
    assert pixel(browser, "boundary", cx, cy)[:3] == [255, 255, 255]
    # the chart has axes: a grey vertical line at its left edge
    r, g, b, a = pixel(browser, "curves", 40, 100)
    assert a > 0 and r == g == b and 100 <= r <= 200


def test_pause_stops_at_once_and_gradients_can_be_shown_on_the_edges(server, browser):
    browser.set_window_size(1400, 1100)
    wait = WebDriverWait(browser, 20)
    status, key = build(browser, wait, server, data="moons", steps=1)
    browser.find_element(By.ID, "play").click()
    wait.until(lambda d: int(status.get_attribute("data-epoch")) >= 8)
    browser.find_element(By.ID, "play").click()
    wait.until(lambda d: d.find_element(By.ID, "play").text == "Play")
    paused = int(status.get_attribute("data-epoch"))
    time.sleep(1.5)
    assert int(status.get_attribute("data-epoch")) == paused  # nothing more is drawn
    assert api(server, f"/api/sessions/{key}")["epoch"] == paused  # nor trained
    Select(browser.find_element(By.ID, "edges")).select_by_value("gradients")
    norm = browser.find_element(By.ID, "grad-norm-1")
    layer = api(server, f"/api/sessions/{key}")["layers"][0]
    assert norm.text == f"‖∂L/∂W1‖ = {fmt(layer['grad_norm'])}"
    edge = browser.find_element(By.ID, "edge-1-0-0")
    assert edge.get_attribute("stroke") == ("#1f77b4" if layer["grad"][0][0] >= 0 else "#e4670a")


def test_a_vanishing_gradient_is_pointed_out_and_checks_state_their_tolerance(server, browser):
    browser.set_window_size(1400, 1100)
    wait = WebDriverWait(browser, 20)
    build(browser, wait, server, data="moons", steps=1)
    note = browser.execute_script(
        "return [vanishing({key: 'delta1', data: [[3.98e-12, -1e-13]]}),"
        " vanishing({key: 'delta1', data: [[0.2, 1e-13]]}),"
        " vanishing({key: 'dW1', data: [[0, 0], [0, 0]]}),"
        " vanishing({key: 'z1', data: [[1e-13]]})];"
    )
    assert note[0].startswith("vanishing: every entry is below 1e-6 (largest 3.98e-12)")
    assert note[1] == "" and note[3] == "" and note[2].startswith("all zero")
    browser.find_element(By.ID, "explain").click()
    wait.until(lambda d: d.find_element(By.ID, "step-title").text == "The chain rule")
    while "output" not in browser.find_element(By.ID, "step-title").text:
        browser.find_element(By.ID, "next").click()
    checks = browser.find_elements(By.CSS_SELECTOR, "#step-body .check")
    assert checks and all("(tolerance 1e-4)" in c.text and "✓" in c.text for c in checks)


def test_an_uploaded_tsv_asks_for_its_target_and_never_trains_the_old_set(
    server, browser, tmp_path
):
    browser.set_window_size(1400, 1100)
    wait = WebDriverWait(browser, 20)
    browser.get(server + "/")
    wait.until(lambda d: d.find_element(By.ID, "data").get_attribute("value") == "spirals")
    rng = np.random.default_rng(0)
    rows = [
        f"{i}\t{x:.3f}\t{y:.3f}\t{int(x * y > 0)}"
        for i, (x, y) in enumerate(rng.standard_normal((60, 2)) * 40)
    ]
    path = tmp_path / "points.tsv"
    path.write_text("id\tx1\tx2\tside\n" + "\n".join(rows) + "\n")
    browser.find_element(By.ID, "upload").send_keys(str(path))
    message = browser.find_element(By.ID, "message")
    wait.until(lambda d: "type the target column (one of id, x1, x2, side)" in message.text)
    assert browser.find_element(By.ID, "data").get_attribute("value").endswith("points.tsv")
    browser.find_element(By.ID, "build").click()  # no target yet: the server says which
    wait.until(lambda d: "target field" in message.text and "side" in message.text)
    assert browser.find_element(By.ID, "status").get_attribute("data-session") is None
    browser.find_element(By.ID, "target").send_keys("side")
    browser.find_element(By.ID, "drop").send_keys("id")
    Select(browser.find_element(By.ID, "standardize")).select_by_value("yes")
    browser.find_element(By.ID, "build").click()
    status = browser.find_element(By.ID, "status")
    wait.until(lambda d: status.get_attribute("data-session"))
    snapshot = api(server, f"/api/sessions/{status.get_attribute('data-session')}")
    assert snapshot["features"] == ["x1", "x2"] and snapshot["plane"] is not None
    # a file that cannot be read: Build says so instead of training the set chosen before
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n1,2,3\n")
    browser.find_element(By.ID, "upload").send_keys(str(broken))
    wait.until(lambda d: "broken.csv was not loaded" in message.text)
    browser.find_element(By.ID, "build").click()
    assert "broken.csv was not loaded" in message.text
