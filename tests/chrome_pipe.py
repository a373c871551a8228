"""A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
JSON messages ending in NUL on file descriptors 3 and 4), so the browser tests need no
websocket client and no browser download: Debian's chromium package is enough."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any


class Chrome:
    def __init__(self, binary: str, profile: str, size: tuple[int, int] = (1400, 2000)) -> None:
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
        flags += ["--disable-component-update", "--disable-sync", f"--window-size={size[0]},{size[1]}"]

        args = [*flags, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]

        def onto_3_and_4() -> None:  # chromium reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_chrome, 3)  # (dup2's copies are inheritable; the pipes' own ends are not)
            os.dup2(from_chrome, 4)

        self.proc = subprocess.Popen(
            [binary, *args],
            preexec_fn=onto_3_and_4,
            close_fds=False,  # closing would happen after preexec_fn, and close 3 and 4
            stdout=subprocess.DEVNULL,
            stderr=open(profile + ".log", "wb"),  # noqa: SIM115 - closed with the process
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()
        self.session = ""

    def _reader(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cv.notify_all()

    def send(self, method: str, timeout: float = 30, **params) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._write, json.dumps(msg).encode() + b"\0")
        with self._cv:
            if not self._cv.wait_for(lambda: self._id in self._answers, timeout):
                raise TimeoutError(method)
            answer = self._answers.pop(self._id)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Runtime.enable")
        self.send("Page.enable")
        self.send("Page.navigate", url=url)

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                value = self.js(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"never true: {expression}")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
            time.sleep(0.1)

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(e["params"]["exceptionDetails"])[:500])
            elif e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error":
                out.append(json.dumps(e["params"].get("args"))[:500])
        return out

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._write)
