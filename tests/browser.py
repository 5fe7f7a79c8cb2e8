"""Serve a folder on loopback and open it in Debian's Chromium through Playwright, offline.

Every request that leaves 127.0.0.1 is aborted, so a page behaves as it would
for a reader with no network, and the test is deterministic.  Console errors
and uncaught page errors are collected for the tests to inspect.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

LOOPBACK = {"127.0.0.1", "localhost"}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output readable
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Yield the base URL of an HTTP server serving ``folder`` on a free loopback port."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class PageLog:
    console_errors: list[tuple[str, str]] = field(default_factory=list)  # (text, url of the script/resource)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def is_loopback(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOOPBACK


@contextlib.contextmanager
def offline_browser(chromium_path: str):
    """Yield a Playwright browser started from ``chromium_path`` (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str):
    """A new page with offline routing and error collection; returns ``(page, log)`` after loading ``url``."""
    page = browser.new_page()
    log = PageLog()

    def route(r):
        if is_loopback(r.request.url):
            r.continue_()
        else:
            log.blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: log.console_errors.append((m.text, m.location.get("url", "")))
            if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.goto(url, wait_until="load")
    return page, log
