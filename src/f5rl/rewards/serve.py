"""Serve registered reward providers over HTTP, so reward models can live on another GPU or host.

    python -m f5rl.rewards.serve --providers whisper_asr,resemblyzer_sim --host 127.0.0.1 --port 8001 \
        [--provider_config 'whisper_asr={"model": "embedded:base"}'] [--token SECRET] [--max_mb 64]

Endpoints: ``GET /health`` → ``{"status": "ok", "providers": [...]}``; ``POST /score/<provider>``
with a JSON reward batch (see ``f5rl.rewards.wire``) → scores, components and NaN reasons.
Requests over ``--max_mb`` get 413, a missing/wrong bearer token 401, an unknown provider 404.
Models are loaded once at start; calls to one provider are serialised (models are not
thread-safe), calls to different providers run concurrently.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from f5rl.rewards.base import RewardProvider
from f5rl.rewards.registry import build_provider
from f5rl.rewards.wire import batch_from_json, output_to_json

log = logging.getLogger(__name__)


class RewardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], providers: dict[str, RewardProvider], token: str | None = None,
                 max_bytes: int = 64 << 20) -> None:
        self.providers = providers
        self.locks = {name: threading.Lock() for name in providers}
        self.token, self.max_bytes = token, max_bytes
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: RewardServer

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.server.token is None:
            return True
        return self.headers.get("Authorization") == f"Bearer {self.server.token}"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        if self.path.rstrip("/") == "/health":
            self._send(HTTPStatus.OK, {"status": "ok", "providers": sorted(self.server.providers)})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorised():
            self._send(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.max_bytes:
            # drain (without keeping) a moderately oversized body so the client reads the 413
            # instead of a broken pipe; far larger bodies just get the answer and a closed socket
            if length <= 16 * self.server.max_bytes:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self.close_connection = True
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       {"error": f"request of {length} bytes exceeds the limit of {self.server.max_bytes}"})
            return
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "score" or parts[1] not in self.server.providers:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"unknown route {self.path}; providers: "
                                                       f"{sorted(self.server.providers)}"})
            return
        try:
            batch = batch_from_json(json.loads(self.rfile.read(length)))
        except (ValueError, KeyError, TypeError) as err:
            self._send(HTTPStatus.BAD_REQUEST, {"error": f"bad reward batch: {err}"})
            return
        name = parts[1]
        with self.server.locks[name]:
            out = self.server.providers[name](batch)
        self._send(HTTPStatus.OK, output_to_json(out))


def make_server(names: list[str], configs: dict[str, dict] | None = None, host: str = "127.0.0.1", port: int = 8001,
                token: str | None = None, max_bytes: int = 64 << 20, device: str = "cpu") -> RewardServer:
    providers = {}
    for name in names:
        p = build_provider(name, (configs or {}).get(name))
        p.ensure_setup(device)  # load models before accepting requests
        providers[name] = p
    return RewardServer((host, port), providers, token, max_bytes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--providers", required=True, help="comma-separated provider names")
    ap.add_argument("--provider_config", action="append", default=[], help="NAME=JSON config, repeatable")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    ap.add_argument("--max_mb", type=float, default=64)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    configs = {}
    for item in args.provider_config:
        name, _, js = item.partition("=")
        configs[name] = json.loads(js)
    server = make_server(args.providers.split(","), configs, args.host, args.port, args.token,
                         int(args.max_mb * (1 << 20)), args.device)
    print(f"serving {sorted(server.providers)} on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
