"""Inspect logs in a real browser: `inspect view` serving a log folder on 127.0.0.1, the viewer's
URL of one sample, and headless Chromium rendering that page (its text, or a PNG).

    python -m alignlab.inspect_view screenshot --log-dir results/af/inspect --sample q1-free-0 --out docs/inspect_view.png
    python -m alignlab.inspect_view text --log-dir results/af/inspect --sample q1-free-0 --tab scoring

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`, standard
library only) and the page is read once it has loaded the sample. The one-shot flags
(`--dump-dom`, `--screenshot` with `--virtual-time-budget`) do not work with this viewer: under
virtual time it never fetches the log, and the page says "No messages" however long the budget.
Nothing here names a kind.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

HOST = "127.0.0.1"
BROWSERS = ("chromium", "chromium-browser")
# The viewer's sample tabs (its bundle: kSampleMessagesTabId, kSampleScoringTabId, ...).
TABS = ("messages", "scoring", "transcript", "metadata", "info", "json")
# What the viewer shows while it loads, or before a sample's data arrived.
NOT_READY = (
    "Loading application…", "Loading log…", "Loading sample data...", "Loading messages", "Loading events",
    "No messages", "Scoring data not available", "No events to display",
)


class ViewerError(RuntimeError):
    """The viewer or the browser failed: the message says which, with its output."""


# --- the viewer's routes ---------------------------------------------------------------------------

def sample_url(base: str, log: str, sample_id: str | int, epoch: int = 1, tab: str = "messages") -> str:
    """The viewer's URL of one sample: a hash route `#/logs/<log>/samples/sample/<id>/<epoch>/<tab>`,
    `log` being the log file's path relative to the served folder (e.g. `sdf-r0.eval`). The
    viewer builds the same route (logSamplesUrl in its bundle): the log path's segments and the
    sample id URL-encoded."""
    if tab not in TABS:
        raise ValueError(f"tab '{tab}' is not one of the viewer's sample tabs: {', '.join(TABS)}")
    path = quote(str(log).strip("/"), safe="/")
    return f"{base.rstrip('/')}/#/logs/{path}/samples/sample/{quote(str(sample_id), safe='')}/{int(epoch)}/{tab}"


def log_of_sample(log_dir: str | Path, sample_id: str) -> str:
    """The first log (by name) under `log_dir` that holds `sample_id`, relative to `log_dir`."""
    from inspect_ai.log import read_eval_log

    logs = sorted(Path(log_dir).rglob("*.eval"))
    if not logs:
        raise ViewerError(f"{log_dir}: no .eval logs")
    for path in logs:
        ids = read_eval_log(str(path), header_only=True).eval.dataset.sample_ids or [
            s.id for s in read_eval_log(str(path)).samples or []
        ]
        if sample_id in map(str, ids):
            return path.relative_to(log_dir).as_posix()
    raise ViewerError(f"{log_dir}: no log holds a sample '{sample_id}' (looked in {len(logs)} logs)")


# --- `inspect view` --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextmanager
def serve(log_dir: str | Path, port: int | None = None, timeout: float = 90) -> Iterator[str]:
    """`inspect view --log-dir LOG_DIR --host 127.0.0.1 --port PORT` as a subprocess; yields its base
    URL once it answers, and always stops it. A free port unless one is given (the viewer
    terminates another `inspect view` that holds its port)."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        raise ViewerError(f"{log_dir}: no such folder")
    port = port or free_port()
    base = f"http://{HOST}:{port}/"
    # `python -m inspect_ai` is the `inspect` command, without relying on the script's shebang.
    cmd = [sys.executable, "-m", "inspect_ai", "view", "--log-dir", str(log_dir.resolve()),
           "--host", HOST, "--port", str(port)]
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "COLUMNS": "200"})
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise ViewerError(f"`{' '.join(cmd)}` exited ({proc.returncode}):\n{_tail(out)}")
                try:
                    with urllib.request.urlopen(base + "api/logs", timeout=5) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise ViewerError(f"`{' '.join(cmd)}` did not answer on {base} within {timeout:.0f} s:\n{_tail(out)}")
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(f, n: int = 3000) -> str:
    f.flush()
    f.seek(0)
    return f.read()[-n:]


# --- Chromium ----------------------------------------------------------------------------------------

def find_chromium() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def ensure_chromium(timeout: float = 1200) -> tuple[str | None, str | None]:
    """(path, None) when Chromium is installed, installing Debian's `chromium` package with apt-get
    when it is missing and this process can (root, apt-get); else (None, why it cannot)."""
    if path := find_chromium():
        return path, None
    missing = f"Chromium is not installed (neither {' nor '.join(BROWSERS)} is on PATH)"
    if os.geteuid() != 0:
        return None, f"{missing} and installing Debian's `chromium` package needs root"
    if shutil.which("apt-get") is None:
        return None, f"{missing} and there is no apt-get to install Debian's `chromium` package"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-q"]
    log, installed = [], False
    for cmd in ([*apt, "install", "-y", "chromium"], [*apt, "update"], [*apt, "install", "-y", "chromium"]):
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"{missing}; `{' '.join(cmd)}` timed out after {timeout:.0f} s"
        log.append(f"$ {' '.join(cmd)} (exit {p.returncode})\n{p.stdout[-1500:]}{p.stderr[-1500:]}")
        if p.returncode == 0 and cmd[-1] == "chromium":
            installed = True
            break  # a first failure runs apt-get update, then installs again
    if path := find_chromium():
        return path, None
    if installed:
        return None, f"apt-get installed Debian's `chromium`, but neither {' nor '.join(BROWSERS)} is on PATH:\n" + "\n".join(log)
    return None, f"{missing} and apt-get could not install it:\n" + "\n".join(log)


class Browser:
    """One headless Chromium (a fresh profile), driven over the DevTools protocol on a pipe."""

    def __init__(self, chromium: str | None = None, size: tuple[int, int] = (1400, 900)):
        self.chromium = chromium or find_chromium()
        if not self.chromium:
            raise ViewerError(f"Chromium is not installed (neither {' nor '.join(BROWSERS)} is on PATH)")
        self.size = size

    def __enter__(self) -> "Browser":
        self._profile = tempfile.TemporaryDirectory(prefix="alignlab-chromium-")
        self._err = tempfile.TemporaryFile("w+")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds():  # Chromium reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self._proc = subprocess.Popen(
            [self.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe",
             f"--user-data-dir={self._profile.name}", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id = b"", 0
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._proc.poll() is None:
                self._send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)
        self._err.close()
        self._profile.cleanup()

    def _send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}, **({"sessionId": session} if session else {})}
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                    raise ViewerError(f"Chromium did not answer {method} within {timeout:.0f} s\n{_tail(self._err)}")
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise ViewerError(f"Chromium exited ({self._proc.poll()}) during {method}:\n{_tail(self._err)}")
                self._buf += chunk
            line, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self._id:  # anything else is an event
                if "error" in reply:
                    raise ViewerError(f"Chromium: {method} failed: {reply['error']}")
                return reply["result"]

    def open(self, url: str, ready: Callable[[str], bool] | None = None, timeout: float = 60) -> "Page":
        """A new tab at `url`, once its text satisfies `ready` (by default: the viewer shows no
        loading or no-data placeholder) and has stayed the same for a second."""
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        # The viewport is the window size exactly (the window's own size includes no page).
        self._send("Emulation.setDeviceMetricsOverride", {
            "width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False}, session)
        self._send("Page.navigate", {"url": url}, session)
        page = Page(self, session, url)
        ready = ready or (lambda text: bool(text.strip()) and not any(p in text for p in NOT_READY))
        deadline, last, same = time.monotonic() + timeout, None, 0
        while True:
            text = page.text()
            same = same + 1 if text == last else 0
            last = text
            if ready(text) and same >= 2:
                return page
            if time.monotonic() > deadline:
                raise ViewerError(f"{url}: the page did not finish loading within {timeout:.0f} s; it shows:\n{text[:3000]}")
            time.sleep(0.5)


class Page:
    def __init__(self, browser: Browser, session: str, url: str):
        self.browser, self.session, self.url = browser, session, url

    def text(self) -> str:
        """The rendered text (`document.body.innerText`)."""
        result = self.browser._send(
            "Runtime.evaluate", {"expression": "document.body ? document.body.innerText : ''", "returnByValue": True},
            self.session,
        )["result"]
        return result.get("value") or ""

    def scroll_to(self, text: str) -> None:
        """Scroll the first element whose text contains `text` (any case) to the top of its pane."""
        js = ("(t => { const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);"
              " while (w.nextNode()) { if (w.currentNode.nodeValue.toLowerCase().includes(t.toLowerCase())) {"
              " w.currentNode.parentElement.scrollIntoView({block: 'start'}); return true; } } return false; })"
              f"({json.dumps(text)})")
        found = self.browser._send("Runtime.evaluate", {"expression": js, "returnByValue": True}, self.session)
        if not found["result"].get("value"):
            raise ViewerError(f"{self.url}: no text '{text}' on the page to scroll to")
        time.sleep(0.5)  # let the viewer re-render what came into view

    def screenshot(self, out: str | Path) -> Path:
        """A PNG of the visible page."""
        data = self.browser._send("Page.captureScreenshot", {"format": "png"}, self.session)["data"]
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(base64.b64decode(data))
        tmp.replace(out)
        return out


# --- command line ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignlab.inspect_view", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name, what in (("screenshot", "write a PNG of a sample's page"), ("text", "print a sample's page text")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--log-dir", required=True, help="a folder of Inspect logs, e.g. results/<exp>/inspect")
        p.add_argument("--sample", required=True, help="the sample's id")
        p.add_argument("--log", help="its log file, relative to --log-dir (default: the first log that holds it)")
        p.add_argument("--epoch", type=int, default=1)
        p.add_argument("--tab", default="messages", choices=TABS)
        p.add_argument("--timeout", type=float, default=90, help="seconds to wait for the page")
        if name == "screenshot":
            p.add_argument("--out", required=True, help="the PNG to write")
            p.add_argument("--size", default="1400x900", help="window size WIDTHxHEIGHT")
            p.add_argument("--scroll-to", help="scroll the first element with this text to the top (e.g. REASONING)")
    args = ap.parse_args(argv)
    try:
        log = args.log or log_of_sample(args.log_dir, args.sample)
        size = tuple(int(v) for v in getattr(args, "size", "1400x900").split("x"))
        with serve(args.log_dir) as base, Browser(size=size) as browser:
            page = browser.open(sample_url(base, log, args.sample, args.epoch, args.tab), timeout=args.timeout)
            if args.command == "screenshot":
                if args.scroll_to:
                    page.scroll_to(args.scroll_to)
                out = page.screenshot(args.out)
                print(f"{out}: {args.sample} of {log} ({args.tab}), {out.stat().st_size // 1024} KB")
            else:
                print(page.text())
    except ViewerError as e:
        print(f"inspect_view: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
