"""The website, read as a reader reads it: built, served on 127.0.0.1, opened in Chromium.

Needs the site packages (``pip install -e '.[site]'``), selenium, and Debian's
``chromium`` and ``chromium-driver`` (``.ci/apt-packages.txt``); each missing piece skips
the browser test with the reason. The staging checks at the top need none of them.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "site-artifacts"
sys.path.insert(0, str(ROOT / "tools"))

import build_site  # noqa: E402

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,2200",
)
RAW_MATH = re.compile(r"(?<![\w$])\$[^$\s][^$\n]*\$(?![\w$])|\\\(|\\\[")


# ------------------------------------------------------------------- staging (no browser)


def test_stage_without_solutions_leaves_no_trace_of_them(tmp_path):
    staged = build_site.stage(tmp_path / "src", solutions=False)
    assert "solutions" not in staged["notebooks"]
    assert not (tmp_path / "src" / "solutions").exists()
    texts = [p.read_text(encoding="utf-8") for p in (tmp_path / "src").rglob("*")
             if p.suffix in {".md", ".ipynb"}]
    assert texts
    assert not [t for t in texts if "](../solutions/" in t or "](solutions/" in t]
    index = (tmp_path / "src" / "index.md").read_text(encoding="utf-8")
    assert "](solutions/" not in index and ":caption: Solutions" not in index


def test_stage_replaces_badges_and_fixes_anchors(tmp_path):
    build_site.stage(tmp_path / "src", solutions=True)
    nb = json.loads((tmp_path / "src/chapters/01_principles_and_mechanisms.ipynb").read_text())
    first = "".join(nb["cells"][0]["source"])
    assert "colab-badge.svg" not in first
    assert 'class="colab-link"' in first and 'class="download-link"' in first
    assert "../notebooks/chapters/01_principles_and_mechanisms.ipynb" in first
    # Jupyter-style anchors become the ids Sphinx writes.
    assert "](#1.-" not in first
    index = (tmp_path / "src" / "index.md").read_text(encoding="utf-8")
    assert "](chapters/01_principles_and_mechanisms.ipynb)" in index
    assert "](tools/matrix.toml)" not in index  # not a page: points at the code host
    assert (tmp_path / "src/api/index.md").exists()


# ----------------------------------------------------------------------- the browser test


def _missing() -> str | None:
    for module, what in (("sphinx", "Sphinx"), ("myst_nb", "myst-nb"),
                         ("sphinx_book_theme", "sphinx-book-theme"),
                         ("selenium", "selenium")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed (pip install -e '.[site]')"
    if _chromium() is None:
        return "no Chromium browser (apt-get install chromium chromium-driver)"
    if _chromedriver() is None:
        return "no ChromeDriver (apt-get install chromium-driver)"
    return None


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromedriver() -> str | None:
    return shutil.which("chromedriver")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A browser that moves to the next page mid-download closes the connection.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    build_site.build(base / "site", stage_dir=base / "src", solutions=True)
    seconds = time.perf_counter() - start
    out = base / "site"
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "dir": out,
               "seconds": seconds}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_chromedriver()))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition: str, timeout: float = 20.0) -> bool:
    """Poll a JavaScript expression until it is truthy."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if driver.execute_script(f"return Boolean({condition});"):
            return True
        time.sleep(0.1)
    return False


def _open(driver, url: str) -> list[str]:
    """Load ``url``, let MathJax finish, and return the SEVERE console messages."""
    driver.get(url)
    _wait(driver, "document.readyState === 'complete'")
    _wait(driver, "!window.MathJax || (MathJax.startup && MathJax.startup.promise"
                  " && (window.__mjDone || (MathJax.startup.promise.then("
                  "() => { window.__mjDone = true; }), false)))")
    return [entry["message"] for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE"]


PAGE_FACTS = """
const article = document.querySelector('article') || document.body;
const copy = article.cloneNode(true);
copy.querySelectorAll('pre, code, mjx-container, script, style, .highlight')
    .forEach(e => e.remove());
return {
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  images: Array.from(document.querySelectorAll('img[src]')).map(i => i.src),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  math: document.querySelectorAll('mjx-container').length,
  mathErrors: document.querySelectorAll('mjx-merror').length,
  text: copy.innerText,
};
"""


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_site_reads_well_in_a_browser(site, browser):
    root = site["url"]
    host = urlparse(root).netloc
    queue, seen, pages = [root + "index.html"], set(), {}
    errors, broken, raw_math, fragments = [], [], [], []
    files_checked = set()
    start = time.perf_counter()
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        severe = _open(browser, url)
        errors += [f"{url}: {m}" for m in severe]
        facts = browser.execute_script(PAGE_FACTS)
        pages[url] = facts
        if facts["mathErrors"]:
            raw_math.append(f"{url}: {facts['mathErrors']} MathJax errors")
        hits = RAW_MATH.findall(facts["text"])
        if hits:
            raw_math.append(f"{url}: {hits[:3]}")
        for link in facts["links"] + facts["images"]:
            target, fragment = urldefrag(link)
            parsed = urlparse(target)
            if parsed.netloc != host:
                continue  # external: not checked offline
            path = parsed.path
            if path.endswith("/"):
                target += "index.html"
            if fragment and target.endswith(".html"):
                fragments.append((url, target, fragment))
            if target.endswith(".html") and "/_static/" not in path:
                if target not in seen:
                    queue.append(target)
            elif target not in files_checked:
                files_checked.add(target)
                if _status(target) != 200:
                    broken.append(f"{url} -> {link}")
    crawl_seconds = time.perf_counter() - start

    for page, target, fragment in fragments:
        if target not in pages:
            broken.append(f"{page} -> {target} (not loaded)")
        elif fragment not in pages[target]["ids"]:
            broken.append(f"{page} -> {target}#{fragment} (no such anchor)")
    for url in seen:
        if url not in pages:
            broken.append(url)
    # Pages that failed to load show the server's 404 page: Sphinx pages all have a title.
    missing = [u for u, f in pages.items() if not f["ids"]]

    assert not errors, "JavaScript errors:\n" + "\n".join(errors[:20])
    assert not broken, "broken internal links or images:\n" + "\n".join(sorted(set(broken))[:30])
    assert not missing, f"pages that did not load: {missing[:10]}"
    assert not raw_math, "raw or failed maths:\n" + "\n".join(raw_math[:10])

    names = {urlparse(u).path for u in pages}
    for required in ("/chapters/01_principles_and_mechanisms.html",
                     "/exercises/01_signal_propagation.html",
                     "/solutions/05_dynamics.html", "/api/index.html"):
        assert required in names, f"{required} is not reachable from the landing page"
    assert len(pages) >= 20

    chapter1 = root + "chapters/01_principles_and_mechanisms.html"
    assert pages[chapter1]["math"] > 10, "chapter 1's equations were not typeset by MathJax"
    assert any(pages[u]["math"] for u in pages if "/api/" in u), "no typeset maths in the API"

    # The search page finds "bottleneck" on chapter 1.
    _open(browser, root + "search.html?q=bottleneck")
    assert _wait(browser, "document.querySelector('#search-results ul.search li a')", 30)
    _wait(browser, "/found/i.test((document.querySelector('.search-summary')||{}).innerText"
                   " || '')", 30)
    results = browser.execute_script(
        "return Array.from(document.querySelectorAll('#search-results ul.search li a'))"
        ".map(a => a.href);"
    )
    assert any("chapters/01_principles_and_mechanisms" in r for r in results), results

    # The Colab and download links of a notebook page.
    _open(browser, chapter1)
    colab = browser.execute_script("return document.querySelector('a.colab-link').href;")
    download = browser.execute_script("return document.querySelector('a.download-link').href;")
    from resnet_tf.colab import colab_url

    assert colab == colab_url("chapters/01_principles_and_mechanisms.ipynb")
    with urllib.request.urlopen(download, timeout=10) as response:
        assert json.loads(response.read())["cells"], "the downloaded notebook is empty"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "chapter1.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    # A second view: the section with the scalar toy's equations and figure.
    browser.execute_script(
        "const h = document.getElementById('2-the-tyranny-of-multiplication');"
        "if (h) { h.scrollIntoView(); }"
    )
    browser.save_screenshot(str(ARTIFACTS / "chapter1-section2.png"))
    print(f"site built in {site['seconds']:.1f} s; {len(pages)} pages crawled in "
          f"{crawl_seconds:.1f} s; screenshot: {shot}")
