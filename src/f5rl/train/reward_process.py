"""Reward models in a process of their own, started and stopped by the trainer (``rl.rewards.process=server``).

Scoring in the training process costs more than the scoring: CTranslate2 (Whisper) keeps OpenMP
worker threads alive, and while they exist libgomp sees more threads than cores and torch's own
threads stop spinning between operations, which slowed every later rollout and backward pass of a
2-core CPU run. A reward server (``python -m f5rl.rewards.serve`` on loopback, with its own thread
budget) keeps those threads out of the trainer; the trainer then scores through ``remote``
providers, and a chunk of rollouts can be scored while the next chunk is rolled out.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


class RewardServerProcess:
    """``python -m f5rl.rewards.serve`` for ``providers`` (the ``rl.rewards.providers`` entries), one
    key per provider label, on a free loopback port. :meth:`remote_specs` turns the entries into
    ``remote`` providers of that server (same weights and labels, so logged names do not change)."""

    def __init__(self, providers: list[dict[str, Any]], threads: int = 1, device: str = "cpu",
                 start_timeout: float = 600.0) -> None:
        self.providers, self.threads, self.device, self.start_timeout = providers, threads, device, start_timeout
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def keys(self) -> list[str]:
        return [p.get("label") or p["name"] for p in self.providers]

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "f5rl.rewards.serve", "--host", "127.0.0.1", "--port", "0",
                "--device", self.device, "--threads", str(self.threads),
                "--providers", ",".join(f"{k}={p['name']}" for k, p in zip(self.keys(), self.providers))]
        for k, p in zip(self.keys(), self.providers):
            if p.get("config"):
                argv += ["--provider_config", f"{k}={json.dumps(dict(p['config']))}"]
        return argv

    def start(self) -> str:
        """Start the server and wait until its models are loaded; returns its URL. A server that
        exits or stays silent raises with what it printed."""
        from f5rl.utils.threads import thread_env

        env = {**os.environ, **(thread_env(self.threads) if self.threads > 0 else {})}
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, bufsize=1)
        lines: queue.Queue[str | None] = queue.Queue()
        seen: list[str] = []

        def pump() -> None:  # read the server's output for its whole life, so its pipe never fills
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True, name="reward-server-log").start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line.rstrip())
            if line.startswith("serving ") and " on http://" in line:
                self.url = line.rsplit(" on ", 1)[1].strip()
                log.info("reward server (pid %d, %d threads) at %s scores %s", self.proc.pid, self.threads,
                         self.url, ", ".join(self.keys()))
                threading.Thread(target=self._drain, args=(lines,), daemon=True, name="reward-server-drain").start()
                return self.url
        self.stop()
        tail = "\n".join(seen[-15:])
        raise RuntimeError(f"the reward server did not start (rl.rewards.process=server); it printed:\n{tail}")

    @staticmethod
    def _drain(lines: queue.Queue) -> None:
        while (line := lines.get()) is not None:
            log.debug("reward server: %s", line.rstrip())

    def remote_specs(self, timeout: float = 300.0) -> list[dict[str, Any]]:
        """The provider entries, each scoring through this server (weights and labels kept)."""
        if self.url is None:
            raise RuntimeError("start() the reward server first")
        return [{"name": "remote", "weight": p.get("weight", 1.0), "label": key,
                 "config": {"url": self.url, "provider": key, "timeout": timeout}}
                for key, p in zip(self.keys(), self.providers)]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
