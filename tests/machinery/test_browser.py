"""The built book in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium), offline, at a desktop and a phone width.

Three pages a reader meets first (the landing page, a chapter's experiments page, the claims
dashboard): no console error, every formula typeset by the MathJax the book ships (no network:
every host but localhost resolves to nothing), every figure loaded, verdict badges present.
Screenshots go to `_build/screenshots/` for a human to look at.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

PAGES = {
    "landing": "book/intro.html",
    "experiments": "chapters/10-anticorrelated-noise-injection/experiments.html",
    "dashboard": "book/claims.html",
}
WIDTHS = {"desktop": (1280, 900), "phone": (400, 860)}
SHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def site(book_html):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(book_html))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, ("the browser tests need Debian's chromium and "
                                      "chromium-driver (make test installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 # offline: every host but this machine resolves to nothing
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


MATH_STATE = """
const math = [...document.querySelectorAll('span.math, div.math')];
const done = 'mjx-container, .MathJax, .MathJax_SVG, .MathJax_CHTML';
const typeset = math.filter(e => e.querySelector(done));
const raw = document.body.innerText.includes('\\\\(') || document.body.innerText.includes('\\\\[');
return {math: math.length, typeset: typeset.length, raw: raw,
        loaded: !!(window.MathJax && (window.MathJax.startup || window.MathJax.Hub))};
"""

IMAGES = """
return [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0,
                                        alt: i.alt}));
"""


def load(driver, url: str, size) -> dict:
    driver.set_window_size(*size)
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(url)
    state = {}
    for _ in range(60):  # MathJax typesets after load
        state = driver.execute_script(MATH_STATE)
        if state["typeset"] == state["math"] and driver.execute_script(
                "return document.readyState") == "complete":
            break
        time.sleep(0.25)
    return state


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_pages_render_offline(browser, site, page, width):
    state = load(browser, f"{site}/{PAGES[page]}", WIDTHS[width])
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{page}-{width}.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    assert state["loaded"], "MathJax did not load (it must come from the book, not a CDN)"
    assert state["typeset"] == state["math"], state
    assert not state["raw"], "raw TeX delimiters are visible on the page"
    images = browser.execute_script(IMAGES)
    assert all(i["ok"] for i in images), [i for i in images if not i["ok"]]
    if page in ("experiments", "dashboard"):
        badges = browser.find_elements("css selector", ".repro-badge")
        assert badges, "no verdict badges"
        words = {b.text.strip().split()[-1].lower() for b in badges if b.text.strip()}
        assert words & {"pass", "fail"}, words


def test_math_is_typeset_on_a_page_full_of_formulas(browser, site):
    state = load(browser, f"{site}/chapters/10-anticorrelated-noise-injection/derivation.html",
                 WIDTHS["desktop"])
    assert state["math"] > 20 and state["typeset"] == state["math"], state
