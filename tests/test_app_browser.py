"""`twosided app` in a real browser: Debian's chromium driven by Playwright.

The test starts the server on a free port of 127.0.0.1 (safe under xdist),
waits for it with a timeout, and kills it in teardown. It moves a slider,
resets, presses Step several times and checks that the step counter and the
charts' data changed, that a second browser session gets its own model, and
that the browser saw no console error, no failed request and no request to
anything but the local server (the front-end comes from solara-assets, not a
CDN). The screenshots go to outputs/screenshots/ for a person to look at.

chromium is installed by `make test` (scripts/install_chromium.sh) when it is
missing; we never run `playwright install`.
"""
from __future__ import annotations

import os
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
def server(tmp_path_factory):
    proc, url = _start_server(tmp_path_factory.mktemp("app") / "server.log")
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


def _caption(page, key: str) -> str:
    return page.locator(f".twosided-caption-{key}").inner_text()


def _chart_src(page, key: str) -> str:
    """The image data of a chart (its <img> source), to tell whether the chart was redrawn."""
    item = page.locator(".vue-grid-item", has=page.locator(f".twosided-caption-{key}"))
    return item.locator("img").first.get_attribute("src")


def _slider_value(slider) -> str:
    return slider.locator(".v-slider__thumb-label").inner_text().strip()


def test_app_in_a_real_browser(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1500, "height": 1900})
    page = context.new_page()
    watch = Watch(page, server)
    page.goto(server)
    page.get_by_text("Step: 0").wait_for(timeout=UI_TIMEOUT)
    expect = playwright_api.expect
    expect(page.locator(".twosided-caption-active")).to_contain_text("riders 2,000", timeout=UI_TIMEOUT)
    page.screenshot(path=str(SHOTS / "app_initial.png"))

    # Move the "Buyers" slider with the keyboard (step 100), then Reset to build the new market.
    slider = page.locator(".v-input__slider", has_text="Buyers")
    thumb = slider.locator("[role=slider]")
    thumb.focus()
    for value in range(1900, 1400, -100):   # one key press at a time: each change goes to the server
        thumb.press("ArrowLeft")
        expect(slider.locator(".v-slider__thumb-label")).to_have_text(str(value), timeout=UI_TIMEOUT)
        page.wait_for_timeout(300)
    page.get_by_role("button", name="Reset", exact=True).click()
    expect(page.locator(".twosided-caption-active")).to_contain_text("day 0: riders 1,500", timeout=UI_TIMEOUT)
    expect(page.locator(".twosided-prose").first).to_contain_text("1,500 riders", timeout=UI_TIMEOUT)
    active_before = _chart_src(page, "active")
    money_before = _caption(page, "money")

    for n in range(1, 5):
        page.get_by_role("button", name="Step", exact=True).click()
        page.get_by_text(f"Step: {n}", exact=True).wait_for(timeout=UI_TIMEOUT)
    expect(page.locator(".twosided-caption-active")).to_contain_text("day 4:", timeout=UI_TIMEOUT)
    expect(page.locator(".twosided-caption-map")).to_contain_text("day 4:", timeout=UI_TIMEOUT)
    active_after = _chart_src(page, "active")
    assert active_after and active_after != active_before, "the active-agents chart was not redrawn"
    money_after = _caption(page, "money")
    assert money_after != money_before and "GMV n/a" not in money_after, (money_before, money_after)
    riders = int(_caption(page, "active").split("riders ")[1].split(" ")[0].replace(",", ""))
    assert 1000 < riders < 2000, riders   # started at 1,500; a few days move it a little
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "app_after_steps.png"))
    assert (SHOTS / "app_after_steps.png").stat().st_size > 50_000

    # A second browser session gets its own model: it starts at step 0 with the defaults.
    other = browser.new_context(viewport={"width": 1200, "height": 900})
    page2 = other.new_page()
    watch2 = Watch(page2, server)
    page2.goto(server)
    page2.get_by_text("Step: 0").wait_for(timeout=UI_TIMEOUT)
    expect(page2.locator(".twosided-caption-active")).to_contain_text("day 0: riders 2,000", timeout=UI_TIMEOUT)
    page2.get_by_role("button", name="Step", exact=True).click()
    page2.get_by_text("Step: 1", exact=True).wait_for(timeout=UI_TIMEOUT)
    expect(page.get_by_text("Step: 4", exact=True)).to_be_visible()   # the first session did not move
    other.close()

    watch.assert_clean()
    watch2.assert_clean()
    context.close()


def test_app_side_by_side_and_preset(server, browser):
    """Choose the critical-mass preset and side-by-side mode; the page explains what it shows."""
    context = browser.new_context(viewport={"width": 1500, "height": 1900})
    page = context.new_page()
    watch = Watch(page, server)
    page.goto(server)
    page.get_by_text("Step: 0").wait_for(timeout=UI_TIMEOUT)
    page.locator(".v-select", has_text="Preset").click()
    page.get_by_role("option", name="critical_mass: below").click()
    from experiments.app_model import policy_choices
    policy = next((p for p in ("fair_disputes", "proactive_outreach") if p in policy_choices()), None)
    if policy:
        page.locator(".v-select", has_text="CS policy").click()
        page.get_by_role("option", name=policy, exact=True).click()
    page.get_by_text("Side by side: also run without the policy").click()
    page.get_by_role("button", name="Reset", exact=True).click()
    expect = playwright_api.expect
    prose = page.locator(".twosided-prose").first
    expect(prose).to_contain_text("Preset: Critical mass (below)", timeout=UI_TIMEOUT)
    expect(prose).to_contain_text("each side leaves because the other side is too small")
    expect(prose).to_contain_text("Side by side")
    if policy:
        expect(prose).to_contain_text(f"without policy vs with {policy}")
    expect(page.locator(".twosided-caption-active")).to_contain_text("riders 200", timeout=UI_TIMEOUT)
    for n in range(1, 4):
        page.get_by_role("button", name="Step", exact=True).click()
        page.get_by_text(f"Step: {n}", exact=True).wait_for(timeout=UI_TIMEOUT)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "app_preset_side_by_side.png"))
    watch.assert_clean()
    context.close()
