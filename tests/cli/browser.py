"""Open an HTML file from disk in Debian's headless chromium and say what a person would see.

``python -m tests.cli.browser PAGE.html [--screenshot OUT.png]`` prints one JSON object:
the console's errors and warnings, the page's uncaught errors, every request that was
not for the file itself or a ``data:`` URI (the report must make none), and for each
``<img>`` whether it loaded and how much of it is not blank (read back through a
canvas). It runs in a subprocess of the test so that a stuck browser is killed by the
test's timeout, and drives chromium through Playwright with the system's binary
(Playwright's own browser download is never used).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["chromium", "inspect"]

# For each image: loaded, its natural size, and the share of its pixels that are not
# near-white (a plot has axes, bars and text; a blank or broken image has none).
_IMAGES = """
() => Array.from(document.images).map((img) => {
  const out = {id: img.id, complete: img.complete, width: img.naturalWidth,
               height: img.naturalHeight, inked: 0};
  if (!img.complete || !img.naturalWidth) return out;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235) inked++;
  }
  out.inked = inked / (canvas.width * canvas.height);
  return out;
})
"""


def chromium() -> str | None:
    """The chromium binary: $ASYNCPOD_CHROMIUM, else Debian's on PATH."""
    return os.environ.get("ASYNCPOD_CHROMIUM") or shutil.which("chromium")


def inspect(page_path: Path, *, screenshot: Path | None, width: int = 1200) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    binary = chromium()
    if binary is None:
        raise RuntimeError("no chromium on PATH")
    console: list[dict[str, str]] = []
    errors: list[str] = []
    requests: list[str] = []
    url = page_path.resolve().as_uri()
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(
            executable_path=binary, args=["--no-sandbox"], timeout=60_000
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: console.append({"type": m.type, "text": m.text}))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    None if r.url == url or r.url.startswith("data:") else requests.append(r.url)
                ),
            )
            page.goto(url, wait_until="load", timeout=60_000)
            images = page.evaluate(_IMAGES)
            title = page.title()
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {
        "title": title,
        "console": [m for m in console if m["type"] in ("error", "warning")],
        "errors": errors,
        "requests": requests,
        "images": images,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cli.browser")
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args(argv)
    found = inspect(args.page, screenshot=args.screenshot, width=args.width)
    sys.stdout.write(json.dumps(found) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
