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
