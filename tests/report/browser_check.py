#!/usr/bin/env python3
"""Loads a mesalab report.html in headless Chromium and checks it as a reader would see it.

    browser_check.py REPORT.html [--screenshot OUT.png] [--browser PATH]

Passes (exit 0) when the HTML parses with every element closed in order, the page loads
with no console error, no uncaught exception and no
failed request, and every <figure> holds an inline <svg> with a nonzero rendered size.
Exit 1 lists what failed; exit 77 means no Chromium was found (the caller decides whether
that is a skip). Python standard library only: the DevTools protocol is spoken over a small
WebSocket client written here (Debian has no Python CDP or WebSocket package by default).
"""
import argparse
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from html.parser import HTMLParser

BROWSERS = ["chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"]
# Flags that keep Chromium off the network and quiet on a closed machine.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0", "--window-size=1280,900"]


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client masking."""

    def __init__(self, url):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        header, self.buffer = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in header.split(b"\r\n")[0]:
            raise RuntimeError(f"WebSocket handshake failed: {header[:200]!r}")

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("DevTools connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise RuntimeError("DevTools connection closed")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class Page:
    """One DevTools page session: commands with ids, events collected on the way."""

    def __init__(self, ws):
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.receive())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.receive()))
        raise RuntimeError(f"timed out waiting for {method}")


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class TagBalance(HTMLParser):
    """Every element opened is closed, in order (void elements and <x/> aside)."""

    def __init__(self):
        super().__init__()
        self.stack, self.problems = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append((tag, self.getpos()[0]))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1][0] != tag:
            open_tag = self.stack[-1] if self.stack else ("nothing", 0)
            self.problems.append(f"line {self.getpos()[0]}: </{tag}> closes <{open_tag[0]}> "
                                 f"of line {open_tag[1]}")
            return
        self.stack.pop()


def parse_problems(report):
    parser = TagBalance()
    with open(report, encoding="utf-8") as f:
        parser.feed(f.read())
    parser.close()
    return parser.problems[:5] + [f"<{t}> of line {n} never closed" for t, n in parser.stack[:5]]


def find_browser(explicit):
    if explicit:
        return explicit
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def start_browser(browser, profile):
    proc = subprocess.Popen([browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    stop_browser(proc)
    raise RuntimeError("Chromium did not start its DevTools server")


def stop_browser(proc):
    """Kills Chromium with its zygote and renderer processes (its own process group)."""
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def check(report, screenshot, browser):
    profile = tempfile.mkdtemp(prefix="mesalab_chromium_")
    proc, browser_ws = start_browser(browser, profile)
    try:
        port = re.match(r"ws://[^:]+:(\d+)/", browser_ws).group(1)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        page = Page(WebSocket(page_ws))
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url="file://" + os.path.abspath(report))
        page.wait_for("Page.loadEventFired")
        figures = page.call("Runtime.evaluate", returnByValue=True, expression="""
            Array.from(document.querySelectorAll('figure')).map(f => {
              const s = f.querySelector('svg');
              if (!s) return null;
              const r = s.getBoundingClientRect();
              return [r.width, r.height];
            })""")["result"]["value"]
        problems = []
        for e in page.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append(f"console error: {p.get('args')}")
            elif method == "Runtime.exceptionThrown":
                problems.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                problems.append(f"log error: {p['entry'].get('text')}")
            elif method == "Network.loadingFailed":
                problems.append(f"failed request: {p.get('errorText')}")
        if not figures:
            problems.append("the page has no <figure>")
        for i, size in enumerate(figures):
            if size is None:
                problems.append(f"figure {i} holds no inline <svg>")
            elif size[0] <= 0 or size[1] <= 0:
                problems.append(f"figure {i} renders at {size[0]} x {size[1]} px")
        if screenshot:
            metrics = page.call("Page.getLayoutMetrics")["cssContentSize"]
            shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                             clip={"x": 0, "y": 0, "width": metrics["width"],
                                   "height": metrics["height"], "scale": 1})
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        return figures, problems
    finally:
        stop_browser(proc)
        shutil.rmtree(profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--screenshot")
    parser.add_argument("--browser")
    args = parser.parse_args()
    if not os.path.isfile(args.report):
        print(f"browser_check: no file {args.report}", file=sys.stderr)
        return 2
    browser = find_browser(args.browser)
    if browser is None:
        print("browser_check: no Chromium found (apt-get install chromium-headless-shell)",
              file=sys.stderr)
        return 77
    figures, problems = check(args.report, args.screenshot, browser)
    problems = [f"HTML: {p}" for p in parse_problems(args.report)] + problems
    for p in problems:
        print(f"browser_check: {p}", file=sys.stderr)
    print(f"browser_check: {args.report}: {len(figures)} figures rendered, "
          f"{len(problems)} problems" + (f"; screenshot {args.screenshot}" if args.screenshot else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
