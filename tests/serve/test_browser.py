"""The page in a real browser: Debian's Chromium, headless, driven by Selenium.

Starts ``cxrkit serve`` on a tiny saved model on a free port, uploads a PNG
through the file picker and reads the probability the page shows. Skips with a
reason where Chromium, its driver or Selenium is missing (``apt-get install
chromium chromium-driver``). Set ``CXRKIT_SCREENSHOTS=DIR`` to keep screenshots
of the page before and after the upload.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cxrkit import load_model

from .conftest import NO_SERVE_EXTRA, png_bytes

pytest.importorskip("fastapi", reason=NO_SERVE_EXTRA)
pytest.importorskip("uvicorn", reason=NO_SERVE_EXTRA)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
        reason="Chromium is not installed: apt-get install chromium "
        "chromium-driver (the browser test uses the system Chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(model_dir):
    port = _free_port()
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cxrkit",
            "serve",
            str(model_dir),
            "--port",
            str(port),
            "--device",
            "cpu",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise AssertionError(f"cxrkit serve exited: {proc.stdout.read().decode()}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("cxrkit serve did not answer /healthz within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, name: str) -> None:
    folder = os.environ.get("CXRKIT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def test_upload_through_the_page_shows_the_probability(
    server, browser, model_dir, training_images, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    X, _ = training_images
    big = np.asarray(np.kron(X[1], np.ones((8, 8), np.uint8)))  # 256 px, the same picture
    # A file name that would run script if the page inserted it as HTML.
    image = tmp_path / "<img src=x onerror=window.__pwned=1>.png"
    image.write_bytes(png_bytes(big))
    expected = load_model(model_dir, device="cpu").predict_proba(
        np.asarray([str(image)], dtype=object)
    )[0]

    browser.get(server + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(EC.text_to_be_present_in_element((By.ID, "model-name"), "tiny"))
    assert "neg vs pos" in browser.find_element(By.ID, "model-classes").text
    _shot(browser, "before-upload")

    browser.find_element(By.ID, "file").send_keys(str(image))
    wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "li[data-class='pos'] .prob-value"))
    )
    shown = float(browser.find_element(By.CSS_SELECTOR, "li[data-class='pos'] .prob-value").text)
    assert shown == pytest.approx(expected[1], abs=5e-5)
    shown_neg = float(
        browser.find_element(By.CSS_SELECTOR, "li[data-class='neg'] .prob-value").text
    )
    assert shown_neg == pytest.approx(expected[0], abs=5e-5)
    assert browser.find_element(By.CSS_SELECTOR, ".result .filename").text == image.name
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, ".result img[src='x']") == []
    assert "Most likely" in browser.find_element(By.CSS_SELECTOR, ".decision").text
    _shot(browser, "after-upload")

    browser.find_element(By.ID, "overlay").click()
    # The page re-renders the result while the overlay arrives: look the picture up again.
    from selenium.common.exceptions import StaleElementReferenceException

    rerender = WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,))
    rerender.until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, ".picture")
            .get_attribute("src")
            .startswith("data:image/png;base64,")
        )
    )
    assert "Grad-CAM" in browser.find_element(By.CSS_SELECTOR, ".caption").text
    _shot(browser, "gradcam-overlay")

    browser.find_element(By.ID, "card-button").click()
    assert '"architecture": "tiny_cnn"' in browser.find_element(By.ID, "card-json").text
    _shot(browser, "model-card")
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert logs == [], logs  # no CSP violation, no failed request, no script error
