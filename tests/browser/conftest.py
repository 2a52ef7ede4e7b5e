"""Browser tests: Debian's Chromium, driven by Playwright, against the real stack.

Each test gets its own browser, launched in the test's own event loop, because
pytest-aiohttp runs `stack` (server and PBX simulator) in a per-test loop.
Launching Chromium costs about 1.5 s.

When a test fails, the page as the user saw it is saved under test-artifacts/
(a screenshot, the HTML and the browser's console log), named after the test.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# From design/GROUND.md. The host-resolver rule stops Chromium looking up
# outside hosts, which this closed network refuses (slowly).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
ACTION_TIMEOUT_MS = 5_000  # Playwright's own default is 30 s; every step here takes well under 1 s
REPORTS = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so the `page` fixture knows at teardown whether the test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture starts. Skip only when asked to: a silent skip would hide a CI without a browser."""
    if os.environ.get("CC_SKIP_BROWSER") == "1":
        pytest.skip("CC_SKIP_BROWSER=1: browser tests skipped")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: run `apt-get install chromium` "
                    "(or set CC_SKIP_BROWSER=1 to skip the browser tests)", pytrace=False)


@pytest_asyncio.fixture
async def page(stack, request: pytest.FixtureRequest) -> Page:
    """A fresh Chromium page whose relative URLs go to the stack's server.

    It depends on `stack` so that it closes first: an open console socket
    would otherwise hold up the server's shutdown.
    """
    console_log: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(base_url=stack.base_url, viewport={"width": 1100, "height": 760})
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            page = await context.new_page()
            page.on("console", lambda message: console_log.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: console_log.append(f"uncaught: {error}"))
            page.on("response", lambda response: response.status >= 400 and console_log.append(
                f"http {response.status}: {response.request.method} {response.url}"))
            yield page
            await _save_if_failed(request, page, console_log)
        finally:
            await browser.close()


async def _save_if_failed(request: pytest.FixtureRequest, page: Page, console_log: list[str]) -> None:
    reports = request.node.stash.get(REPORTS, {})
    if not any(report.failed for report in reports.values()):
        return
    folder = request.config.rootpath / "test-artifacts"
    folder.mkdir(exist_ok=True)
    stem = folder / re.sub(r"[^\w.-]+", "_", request.node.name)
    await page.screenshot(path=f"{stem}.png", full_page=True)
    Path(f"{stem}.html").write_text(await page.content(), encoding="utf-8")
    Path(f"{stem}.log").write_text(f"url: {page.url}\n" + "\n".join(console_log) + "\n", encoding="utf-8")
    print(f"\nbrowser artifacts: {stem}.png, .html, .log")
