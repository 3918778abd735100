"""`twosided app` in a real browser: Debian's chromium driven by Playwright.

The test starts the server on a free port of 127.0.0.1 (safe under xdist),
waits for it with a timeout, and kills it in teardown. It presses Play and
measures simulated days per second of wall time from the page's day counter
(default page and side-by-side mode; issue 17 asks for at least 20); moves a
slider, starts the market, steps and checks that the counter and the charts'
pixels changed; checks that a preset moves the sliders, that each market
shows only its sides, that a second browser session gets its own model, and
that the browser saw no console error, no failed request and no request to
anything but the local server (the front-end comes from solara-assets, not a
CDN). The screenshots go to outputs/screenshots/ for a person to look at.

chromium is installed by `make test` (scripts/install_chromium.sh) when it is
missing; we never run `playwright install`.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "outputs" / "screenshots"
START_TIMEOUT = 90.0
UI_TIMEOUT = 30_000   # ms

import playwright.sync_api as playwright_api  # noqa: E402  (a test dependency: pyproject's [test] extra)

if not CHROMIUM.exists():
    # A missing browser is a failure, never a skip: `make test` installs it first.
    pytest.fail("/usr/bin/chromium is missing: `make test` installs it (scripts/install_chromium.sh)",
                pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _start_server(log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start `twosided app` on a free port; retry if another worker took the port first."""
    last_error = ""
    for _ in range(3):
        port = _free_port()
        log = open(log_path, "w")
        proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "app", "--port", str(port)],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return proc, url
            except OSError:
                time.sleep(0.3)
        _stop(proc)
        log.close()
        last_error = log_path.read_text()[-3000:]
    raise RuntimeError(f"twosided app did not start within {START_TIMEOUT:.0f}s:\n{last_error}")


@pytest.fixture(scope="module")
def server_log(tmp_path_factory):
    return tmp_path_factory.mktemp("app") / "server.log"


@pytest.fixture(scope="module")
def server(server_log):
    proc, url = _start_server(server_log)
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Watch:
    """Everything a page did that a healthy offline page must not do."""

    def __init__(self, page, url: str):
        self.host = urlparse(url).netloc
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: self.failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
        page.on("request", self._request)

    def _request(self, request) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc != self.host:
            self.foreign.append(request.url)

    def assert_clean(self) -> None:
        assert not self.errors, "console errors:\n" + "\n".join(self.errors)
        assert not self.failed, "failed requests:\n" + "\n".join(self.failed)
        assert not self.foreign, "requests outside the app (a CDN?):\n" + "\n".join(self.foreign)


TARGET_DAYS_PER_SECOND = 20   # issue 17: a class must see critical mass play out in well under a minute
MEASURE_SECONDS = 8.0


def _day(page) -> int:
    """The day on the page's counter ("Day 12 of 730")."""
    return int(re.search(r"Day (\d+) of", page.locator(".twosided-day").inner_text()).group(1))


def _days_per_second(page) -> float:
    """Press Play, let the loop settle, then count days on the page's counter over MEASURE_SECONDS of wall time."""
    page.locator(".twosided-play").click()
    page.wait_for_function("() => /Day [1-9]/.test(document.querySelector('.twosided-day').innerText)",
                           timeout=UI_TIMEOUT)
    page.wait_for_timeout(1000)
    first, started = _day(page), time.monotonic()
    page.wait_for_timeout(int(1000 * MEASURE_SECONDS))
    last, ended = _day(page), time.monotonic()
    if page.locator(".twosided-play").is_enabled():   # disabled once the market reached its horizon
        page.locator(".twosided-play").click()        # pause
    return (last - first) / (ended - started)


def _slider(page, label: str) -> str:
    return page.locator(".v-input__slider", has_text=label).locator(".v-slider__thumb-label").inner_text().strip()


def _choose(page, select_label: str, option: str) -> None:
    page.locator(".v-select", has_text=select_label).click()
    page.get_by_role("option", name=option, exact=True).click()


def _open(browser, server, height=1900):
    context = browser.new_context(viewport={"width": 1500, "height": height})
    page = context.new_page()
    watch = Watch(page, server)
    page.goto(server)
    page.get_by_text("Day 0 of").wait_for(timeout=UI_TIMEOUT)
    return context, page, watch


def test_default_page_plays_at_least_20_days_per_second(server, browser):
    context, page, watch = _open(browser, server)
    rate = _days_per_second(page)
    page.screenshot(path=str(SHOTS / "app_playing.png"))
    assert rate >= TARGET_DAYS_PER_SECOND, f"{rate:.1f} simulated days per second of wall time"
    watch.assert_clean()
    context.close()


def test_side_by_side_plays_at_least_20_days_per_second(server, browser):
    context, page, watch = _open(browser, server)
    _choose(page, "Customer-success (CS) policy", "fair_disputes")
    page.get_by_text("Side by side: also run the same market without the policy").click()
    page.locator(".twosided-start").click()
    expect = playwright_api.expect
    expect(page.locator(".twosided-prose").first).to_contain_text("without policy vs with fair_disputes",
                                                                  timeout=UI_TIMEOUT)
    rate = _days_per_second(page)
    # both arms' maps, side by side
    expect(page.locator(".twosided-chart-map")).to_be_visible()
    page.screenshot(path=str(SHOTS / "app_side_by_side.png"))
    assert rate >= TARGET_DAYS_PER_SECOND, f"{rate:.1f} simulated days per second of wall time (side by side)"
    watch.assert_clean()
    context.close()


def _canvas(page, key: str) -> str:
    """The pixels of a chart (its canvas as a data URL), to tell whether it was redrawn."""
    return page.locator(f".twosided-chart-{key} canvas").first.evaluate("c => c.toDataURL()")


def test_app_in_a_real_browser(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page, watch = _open(browser, server)
    expect = playwright_api.expect
    expect(page.locator(".twosided-readout")).to_contain_text("riders 2,000 · drivers 80", timeout=UI_TIMEOUT)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(SHOTS / "app_initial.png"))
    # Only the controls a student needs, named as a student would: no Mesa scaffolding, no sellers on rides.
    body = page.locator("body").inner_text()
    for leftover in ("PAGE 0", "Use Threads", "Play Interval", "Render Interval"):
        assert leftover.lower() not in body.lower(), leftover
    assert "Random seed" in body and "Riders at the start" in body and "Drivers at the start" in body
    assert "Sellers at the start" not in body and "Restaurants at the start" not in body
    assert _slider(page, "Platform's cut") == "25"        # the rides market's own commission, in %

    # Move the riders slider with the keyboard (step 100), then start the market it describes.
    slider = page.locator(".v-input__slider", has_text="Riders at the start")
    thumb = slider.locator("[role=slider]")
    thumb.focus()
    for value in range(1900, 1400, -100):   # one key press at a time: each change goes to the server
        thumb.press("ArrowLeft")
        expect(slider.locator(".v-slider__thumb-label")).to_have_text(str(value), timeout=UI_TIMEOUT)
        page.wait_for_timeout(300)
    expect(page.get_by_text("The controls differ from the market running now")).to_be_visible()
    page.locator(".twosided-start").click()
    expect(page.locator(".twosided-readout")).to_contain_text("riders 1,500", timeout=UI_TIMEOUT)
    expect(page.locator(".twosided-prose").first).to_contain_text("1,500 riders", timeout=UI_TIMEOUT)
    page.wait_for_timeout(1500)
    before = {key: _canvas(page, key) for key in ("size", "money", "map")}
    for n in range(1, 5):
        page.locator(".twosided-step").click()
        expect(page.locator(".twosided-day")).to_have_text(f"Day {n} of 730", timeout=UI_TIMEOUT)
    page.wait_for_timeout(1500)
    after = {key: _canvas(page, key) for key in before}
    assert [k for k in before if before[k] == after[k]] == [], "a chart was not redrawn"
    riders = int(page.locator(".twosided-readout").inner_text().split("riders ")[1].split(" ")[0].replace(",", ""))
    assert 1000 < riders < 2000, riders   # started at 1,500; a few days move it a little

    # A second browser session gets its own model: it starts at day 0 with the defaults.
    other, page2, watch2 = _open(browser, server, height=900)
    expect(page2.locator(".twosided-readout")).to_contain_text("riders 2,000", timeout=UI_TIMEOUT)
    page2.locator(".twosided-step").click()
    expect(page2.locator(".twosided-day")).to_have_text("Day 1 of 730", timeout=UI_TIMEOUT)
    expect(page.locator(".twosided-day")).to_have_text("Day 4 of 730")   # the first session did not move
    other.close()
    watch.assert_clean()
    watch2.assert_clean()
    context.close()


@pytest.mark.parametrize("start", ["below", "above"])
def test_presets_set_the_sliders_and_play(server, browser, start):
    """A preset moves the sliders to what it runs; the page explains it; a screenshot for a person."""
    context, page, watch = _open(browser, server)
    expect = playwright_api.expect
    _choose(page, "Preset", f"critical_mass: {start}")
    sizes = {"below": ("200", "8"), "above": ("2500", "100")}[start]
    expect(page.locator(".v-input__slider", has_text="Riders at the start")
           .locator(".v-slider__thumb-label")).to_have_text(sizes[0], timeout=UI_TIMEOUT)
    assert _slider(page, "Drivers at the start") == sizes[1]
    assert _slider(page, "Marketing budget") == "0"          # the preset switches paid marketing off
    page.locator(".twosided-start").click()
    prose = page.locator(".twosided-prose").first
    expect(prose).to_contain_text(f"Preset: Critical mass ({start})", timeout=UI_TIMEOUT)
    expect(prose).to_contain_text("each side leaves because the other side is too small")
    expect(page.locator(".twosided-readout")).to_contain_text(f"riders {int(sizes[0]):,}", timeout=UI_TIMEOUT)
    expect(page.locator(".twosided-day")).to_have_text("Day 0 of 365")
    page.locator(".twosided-play").click()
    page.wait_for_function("() => /Day [1-9][0-9]+/.test(document.querySelector('.twosided-day').innerText)",
                           timeout=UI_TIMEOUT)
    page.wait_for_timeout(6000)
    page.screenshot(path=str(SHOTS / f"app_preset_{start}.png"), full_page=True)
    watch.assert_clean()
    context.close()


def test_markets_show_only_their_sides(server, browser):
    context, page, watch = _open(browser, server, height=1200)
    expect = playwright_api.expect
    _choose(page, "Market", "goods")
    expect(page.get_by_text("Merchants at the start")).to_be_visible(timeout=UI_TIMEOUT)
    assert page.get_by_text("Drivers at the start", exact=True).count() == 0
    _choose(page, "Market", "delivery")
    for label in ("Diners at the start", "Restaurants at the start", "Couriers at the start"):
        expect(page.get_by_text(label)).to_be_visible(timeout=UI_TIMEOUT)
    watch.assert_clean()
    context.close()


def test_server_log_is_clean(server_log):
    """No traceback and no cookie warning in the terminal a teacher is looking at."""
    text = server_log.read_text()
    assert "Traceback" not in text and "samesite" not in text.lower(), text[-3000:]
