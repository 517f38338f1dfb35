"""Open an HTML file in headless Chromium with networking disabled and report what happened.

Talks the DevTools protocol over a pipe (``--remote-debugging-pipe``: fd 3 in, fd 4 out), so
nothing but the standard library is needed. Collects console messages, uncaught
exceptions, log entries (CSP violations, failed loads) and every network request the page
makes; checks that each chart (``figure.chart``) holds a drawn, non-empty SVG or canvas;
saves a full-page screenshot. Also used by docs/make_screenshots.py.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    env = os.environ.get("LINKAGE_CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


# What a chart must have to count as drawn: an <svg> (or <canvas>) with a non-zero size and
# at least a few drawn shapes inside its plotting marks.
_CHECK_CHARTS = r"""
(() => {
  const out = [];
  for (const fig of document.querySelectorAll('figure.chart')) {
    const svg = fig.querySelector('svg');
    const canvas = fig.querySelector('canvas');
    const el = svg || canvas;
    const r = el ? el.getBoundingClientRect() : {width: 0, height: 0};
    let marks = 0;
    if (svg) {
      for (const g of svg.querySelectorAll('g.role-mark:not(.mark-text)')) {
        for (const m of g.querySelectorAll('path, rect, line')) {
          const b = m.getBBox();
          const d = m.getAttribute('d') || '';
          if ((b.width > 0 || b.height > 0) && !d.includes('NaN')) marks += 1;
        }
      }
    }
    out.push({kind: svg ? 'svg' : (canvas ? 'canvas' : 'none'), width: r.width,
              height: r.height, marks: marks,
              caption: (fig.querySelector('figcaption') || {}).textContent || ''});
  }
  return JSON.stringify({charts: out, title: document.title,
                         height: document.documentElement.scrollHeight,
                         text: document.body ? document.body.innerText.length : 0});
})()
"""


@dataclass
class PageResult:
    console: list[str] = field(default_factory=list)  # console messages of any level
    errors: list[str] = field(default_factory=list)  # exceptions and error log entries
    requests: list[str] = field(default_factory=list)  # URLs other than the file itself
    charts: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    height: int = 0
    text_chars: int = 0
    screenshot: Path | None = None


class _Pipe:
    def __init__(self, proc: subprocess.Popen[bytes], w: int, r: int) -> None:
        self.proc, self.w, self.r = proc, w, r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buf += chunk
        raw, _, self.buf = self.buf.partition(b"\0")
        return json.loads(raw)  # type: ignore[no-any-return]

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str = "",
        timeout: float = 30,
    ) -> dict[str, Any]:
        mid = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})  # type: ignore[no-any-return]
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg.get("method") == method:
                return msg
            self.events.append(msg)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_one(deadline))
        except TimeoutError:
            pass


def open_page(
    html_path: Path,
    screenshot: Path | None = None,
    *,
    width: int = 1280,
    height: int = 2000,
    full_page: bool = True,
    max_height: int | None = None,
    chromium: str | None = None,
    timeout: float = 60,
    start_at: str | None = None,
) -> PageResult:
    """Load ``html_path`` (networking disabled) and return what the page did. ``start_at``:
    the id of an element the screenshot starts at (default: the top of the page)."""
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found")
    cmd_in_r, cmd_in_w = os.pipe()  # we write commands, chromium reads fd 3
    out_r, out_w = os.pipe()  # chromium writes fd 4, we read

    def child_fds() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
        a = fcntl.fcntl(cmd_in_r, fcntl.F_DUPFD, 10)
        b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
        os.dup2(a, 3)
        os.dup2(b, 4)

    with tempfile.TemporaryDirectory(prefix="linkage-chromium-") as profile:
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            # no network: names resolve nowhere and any proxied fetch goes to a closed port
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "about:blank",
        ]
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,  # single-threaded test helper
            close_fds=False,  # our other fds are non-inheritable; 3 and 4 are inherited
        )
        os.close(cmd_in_r)
        os.close(out_w)
        pipe = _Pipe(proc, cmd_in_w, out_r)
        try:
            return _drive(
                pipe, html_path, screenshot, width, height, full_page, max_height, timeout,
                start_at,
            )  # fmt: skip
        finally:
            with contextlib.suppress(OSError):
                pipe.send("Browser.close")
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(cmd_in_w)
            os.close(out_r)


def _drive(
    pipe: _Pipe,
    html_path: Path,
    screenshot: Path | None,
    width: int,
    height: int,
    full_page: bool,
    max_height: int | None,
    timeout: float,
    start_at: str | None = None,
) -> PageResult:
    res = PageResult()
    target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
    sid = pipe.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})[
        "sessionId"
    ]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.call(f"{domain}.enable", session=sid)
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session=sid,
    )
    url = html_path.resolve().as_uri()
    pipe.events.clear()
    pipe.call("Page.navigate", {"url": url}, session=sid, timeout=timeout)
    pipe.wait_event("Page.loadEventFired", timeout=timeout)
    pipe.drain(0.3)  # late console messages and log entries
    info = json.loads(
        pipe.call(
            "Runtime.evaluate", {"expression": _CHECK_CHARTS, "returnByValue": True}, session=sid
        )["result"]["value"]
    )
    res.charts = info["charts"]
    res.title = info["title"]
    res.height = int(info["height"])
    res.text_chars = int(info["text"])
    for ev in pipe.events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            res.console.append(f"{p.get('type')}: {text}")
            if p.get("type") in ("error", "assert"):
                res.errors.append(f"console.{p.get('type')}: {text}")
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            res.errors.append(
                f"exception: {d.get('text')} {d.get('exception', {}).get('description', '')}"
            )
        elif m == "Log.entryAdded":
            e = p["entry"]
            res.console.append(f"log {e.get('level')}: {e.get('text')}")
            if e.get("level") == "error":
                res.errors.append(f"log: {e.get('text')} {e.get('url', '')}")
        elif m == "Network.requestWillBeSent":
            u = p["request"]["url"]
            if u != url and not u.startswith("data:"):
                res.requests.append(u)
        elif m == "Network.loadingFailed":
            res.errors.append(f"load failed: {p.get('errorText')}")
    if screenshot is not None:
        top = 0
        if start_at is not None:
            expr = (
                f"(() => {{ const e = document.getElementById({json.dumps(start_at)}); "
                "return e ? Math.floor(e.getBoundingClientRect().top + window.scrollY) : 0; })()"
            )
            top = int(
                pipe.call("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                          session=sid)["result"]["value"]
            )  # fmt: skip
        h = (res.height if full_page else height) - top
        if max_height is not None:
            h = min(h, max_height)
        shot = pipe.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": top, "width": width, "height": max(h, 1), "scale": 1},
            },
            session=sid,
            timeout=timeout,
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        res.screenshot = screenshot
    return res
