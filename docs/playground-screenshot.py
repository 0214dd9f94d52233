"""Draw README's picture of ``deltaprop playground``: python3 docs/playground-screenshot.py [PNG]

Starts the playground on a free local port, opens it in headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium: pip install -e '.[test]'), trains the default spirals
network (ReLU units) for 150 epochs, explains training row 0 and stops at the ReLU gates of
layer 2, then saves the window as PNG (default: docs/images/playground.png).
"""

import socket
import sys
import threading
import time

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from deltaprop.playground.server import create_app

out = sys.argv[1] if len(sys.argv) > 1 else "docs/images/playground.png"
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
server = uvicorn.Server(
    uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
)
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)
options = Options()
options.binary_location = "/usr/bin/chromium"
for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1180"):
    options.add_argument(argument)
browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(browser, 60)
try:
    browser.get(f"http://127.0.0.1:{port}/")
    wait.until(lambda d: d.find_element(By.ID, "data").get_attribute("value") == "spirals")
    Select(browser.find_element(By.ID, "activation")).select_by_value("relu")
    browser.find_element(By.ID, "build").click()
    status = browser.find_element(By.ID, "status")
    wait.until(lambda d: status.get_attribute("data-session"))
    browser.find_element(By.ID, "play").click()
    wait.until(lambda d: int(status.get_attribute("data-epoch")) >= 150)
    browser.find_element(By.ID, "play").click()
    wait.until(lambda d: d.find_element(By.ID, "play").text == "Play")
    browser.find_element(By.ID, "explain").click()
    title = browser.find_element(By.ID, "step-title")
    wait.until(lambda d: title.text == "The chain rule")
    while not title.text.startswith("Step 4:"):
        browser.find_element(By.ID, "next").click()
    browser.save_screenshot(out)
    print(f"{out}: {status.text}; {title.text}")
finally:
    browser.quit()
    server.should_exit = True
