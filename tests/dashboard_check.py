"""Opens a dashboard page in headless Chromium (Debian's, through Playwright) and checks it.

Usage: dashboard_check.py PAGE.html|URL SCREENSHOT.png

A URL is opened with HTTP Basic credentials when CAUCE_DASHBOARD_KEY is set (the key as the user
name, sent after the server's 401 challenge, as a browser does), and must answer 200.

Fails on any console error or page error, on any reference to the network (beyond the page's own
address), and unless every chart is an SVG that rendered with a real size and real content.
Prints a JSON summary.
"""

import json
import os
import sys

from playwright.sync_api import sync_playwright


def main():
    target, shot = sys.argv[1], sys.argv[2]
    url = target if target.startswith(("http://", "https://")) else f"file://{os.path.abspath(target)}"
    key = os.environ.get("CAUCE_DASHBOARD_KEY")
    errors = []
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CAUCE_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu"],
        )
        context = browser.new_context(
            viewport={"width": 1000, "height": 900},
            http_credentials={"username": key, "password": ""} if key else None,
        )
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("request", lambda r: requests.append(r.url) if r.url != url else None)
        response = page.goto(url, wait_until="load")
        if response is not None and response.status != 200:
            errors.append(f"{url} answered {response.status}")
        charts = page.evaluate("""() => [...document.querySelectorAll('figure.chart')].map(f => {
            const svg = f.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {
                title: f.querySelector('figcaption').textContent,
                width: box.width, height: box.height,
                shapes: svg ? svg.querySelectorAll('rect, circle, polyline, path, line').length : 0,
                texts: svg ? svg.querySelectorAll('text').length : 0,
            };
        })""")
        external = page.evaluate("""() => [...document.querySelectorAll('[src], [href]')]
            .map(e => e.getAttribute('src') || e.getAttribute('href'))
            .filter(u => /^(https?:)?\\/\\//.test(u))""")
        page.screenshot(path=shot, full_page=True)
        browser.close()
    problems = list(errors)
    if requests:
        problems.append(f"network requests: {requests}")
    if external:
        problems.append(f"external references: {external}")
    if not charts:
        problems.append("no charts")
    for c in charts:
        if c["width"] < 100 or c["height"] < 100 or c["shapes"] < 5 or c["texts"] < 1:
            problems.append(f"chart did not render: {c}")
    size = os.path.getsize(shot)
    if size < 20_000:
        problems.append(f"screenshot of only {size} bytes")
    print(json.dumps({"charts": charts, "screenshot_bytes": size, "problems": problems}))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
