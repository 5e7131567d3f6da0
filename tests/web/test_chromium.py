"""kb's web faces in a real browser: the static site of `kb export html` and the TUI of `kb serve`,
each opened in headless Chromium through its driver (Debian's chromium and chromium-driver).

Both need Chromium, its driver and selenium; without them the tests skip with the reason (and fail
when KB_TESTS_REQUIRE names chromium, as CI does).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT / "content"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WINDOW = (1100, 900)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        require_or_skip("chromium", "needs Debian's chromium and chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require_or_skip("chromium", "needs selenium (the test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # No sandbox (CI runs as root); nothing that reaches for the network.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _kb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kb", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("kb-home-site")
    out = tmp_path_factory.mktemp("site") / "site"
    proc = _kb("export", "html", str(out), env={**os.environ, "KB_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert "exported" in proc.stdout and "shown as LaTeX" not in proc.stdout
    return out


def _formula_count(concept_id: str) -> int:
    path = next(CONTENT.glob(f"*/{concept_id}.yaml"))
    return len(yaml.safe_load(path.read_text(encoding="utf-8")).get("formulas") or [])


def test_every_formula_of_the_site_is_mathml(site):
    # Read from the files: every page, no formula fell back to its LaTeX.
    pages = list(site.glob("*/*.html"))
    concept_pages = [p for p in pages if p.name != "index.html"]
    assert len(concept_pages) == len(list(CONTENT.glob("*/*.yaml")))
    for page in concept_pages:
        text = page.read_text(encoding="utf-8")
        assert 'class="math-error"' not in text, page.name
        assert "<merror" not in text, page.name
        assert "<script" not in text, "the site needs no JavaScript"
        assert text.count('display="block"') >= _formula_count(page.stem)


@pytest.mark.parametrize("concept_id", ["softmax", "gru", "affine-transform", "kl-divergence"])
def test_formulas_render_as_math_in_chromium(browser, site, concept_id):
    page = next(site.glob(f"*/{concept_id}.html"))
    browser.get(page.as_uri())
    found = browser.execute_script(
        """
        const all = Array.from(document.querySelectorAll('math'));
        return {
          total: all.length,
          laidOut: all.filter(m => m.getBoundingClientRect().width > 1 && m.getBoundingClientRect().height > 1).length,
          formulas: document.querySelectorAll('.formula math[display="block"]').length,
          errors: document.querySelectorAll('merror, .math-error').length,
          links: Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href')),
        };
        """
    )
    assert found["errors"] == 0
    assert found["formulas"] == _formula_count(concept_id) > 0
    assert found["laidOut"] == found["total"] > 0, "every <math> element takes up room on the page"
    # Links to other concepts are relative pages that exist.
    for href in found["links"]:
        if href and href.endswith(".html") and "://" not in href:
            assert (page.parent / href).resolve().is_file(), href


def test_site_screenshot_is_a_rendered_page(browser, site, tmp_path):
    from PIL import Image

    browser.get((site / "fundamentals" / "softmax.html").as_uri())
    shot = tmp_path / "softmax.png"
    assert browser.save_screenshot(str(shot))
    image = Image.open(shot).convert("L")
    assert image.size[0] == WINDOW[0] and abs(image.size[1] - WINDOW[1]) < 200  # the viewport
    histogram = image.histogram()
    background = max(histogram)
    # Not blank: a good share of the pixels are text, and many grey levels (anti-aliased glyphs).
    assert sum(histogram) - background > 0.02 * sum(histogram)
    assert sum(1 for count in histogram if count) > 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Everything the web terminal receives (the TUI's output) is recorded, so that the test reads what
# the page shows: xterm.js draws on a canvas, with no text in the document.
RECORD_WEBSOCKET = """
window.__kbReceived = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const ws = protocols === undefined ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
  ws.addEventListener('message', async (event) => {
    let data = event.data;
    if (data instanceof Blob) data = await data.text();
    else if (data instanceof ArrayBuffer) data = new TextDecoder().decode(data);
    window.__kbReceived.push(data);
  });
  return ws;
};
window.WebSocket.prototype = NativeWebSocket.prototype;
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
"""


def _shown_text(browser) -> str:
    """What the TUI has sent to the page so far, without its escape sequences."""
    received = browser.execute_script("return window.__kbReceived.join('')")
    return re.sub(r"\x1b\[[0-9;?$]*[A-Za-z]|\x1b\][^\x07]*\x07", "", received)


def _wait_for(browser, predicate, seconds: float = 40.0) -> str:
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        text = _shown_text(browser)
        if predicate(text):
            return text
        time.sleep(0.25)
    raise AssertionError(f"the page never showed it; last received: {text[-2000:]!r}")


def test_kb_serve_shows_the_tui_and_searches(browser, tmp_path):
    port = _free_port()
    env = {**os.environ, "KB_HOME": str(tmp_path / "home"), "KB_LANG": "both"}
    server = subprocess.Popen(
        [sys.executable, "-m", "kb", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first_line = server.stdout.readline() if server.stdout else ""
        assert f"http://127.0.0.1:{port}" in first_line
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_WEBSOCKET})
        for _ in range(40):  # the server may take a moment to listen
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.25)
        browser.get(f"http://127.0.0.1:{port}/")
        _wait_for(browser, lambda text: "All categories" in text and "Softmax" in text)
        before = len(_shown_text(browser))
        keyboard = browser.find_element("css selector", ".xterm-helper-textarea")
        keyboard.send_keys("/")
        # The search box has the focus once the TUI has redrawn it; keys typed before may be lost.
        _wait_for(browser, lambda text: len(text) > before)
        time.sleep(0.5)
        for key in "attention":
            keyboard.send_keys(key)
        shown = _wait_for(browser, lambda text: "matching 'attention'" in text[before:])
        assert "Self-attention" in shown[before:]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()


def test_kb_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _kb("serve", "--port", str(port), env={**os.environ, "KB_HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr
