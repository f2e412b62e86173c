"""Serve registered reward providers over HTTP, so reward models can live on another GPU or host.

    python -m f5rl.rewards.serve --providers whisper_asr,resemblyzer_sim --host 127.0.0.1 --port 8001 \
        [--provider_config 'whisper_asr={"model": "embedded:base"}'] [--token SECRET] [--max_mb 64] [--threads 1]

A provider may be served under its own key (``--providers asr=whisper_asr``; its config is then
``--provider_config 'asr={...}'``), so two configurations of one provider can be served at once.
``--port 0`` picks a free port; the first line printed names the address.

Endpoints: ``GET /health`` → ``{"status": "ok", "providers": [...]}``; ``POST /score/<provider>``
with a JSON reward batch (see ``f5rl.rewards.wire``) → scores, components and NaN reasons.
Requests over ``--max_mb`` get 413, a missing/wrong bearer token 401, an unknown provider 404.
Models are loaded once at start; calls to one provider are serialised (models are not
thread-safe), calls to different providers run concurrently.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from f5rl.rewards.base import RewardProvider
from f5rl.rewards.registry import build_provider
from f5rl.rewards.wire import batch_from_json, output_to_json
from f5rl.utils.cli import command_parser

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
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send(HTTPStatus.BAD_REQUEST, {"error": f"bad Content-Length {self.headers.get('Content-Length')!r}"})
            return
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
    """Build and set up the providers (``name`` or ``key=name`` each; configs by key), then bind."""
    providers = {}
    for entry in names:
        key, _, name = entry.partition("=")
        name = name or key
        if key in providers:
            raise ValueError(f"--providers names {key!r} twice; serve the second under another key (KEY=NAME)")
        p = build_provider(name, (configs or {}).get(key))
        p.ensure_setup(device)  # load models before accepting requests
        providers[key] = p
    return RewardServer((host, port), providers, token, max_bytes)


def provider_configs(providers: str, items: list[str], model: str | None = None) -> dict[str, dict]:
    """Provider configs by key from ``--provider_config KEY=JSON`` items; ``model`` fills the ``model``
    of Whisper-family providers that do not set one."""
    configs = {}
    for item in items:
        key, _, js = item.partition("=")
        try:
            configs[key] = json.loads(js)
        except json.JSONDecodeError as err:
            raise ValueError(f"--provider_config {item!r}: expected KEY=JSON ({err.msg})") from None
    if model:
        for entry in providers.split(","):
            key, _, name = entry.partition("=")
            if (name or key) in ("whisper_asr", "whisper_nll"):
                configs.setdefault(key, {}).setdefault("model", model)
    return configs


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--providers", required=True,
                    help="comma-separated provider names, each optionally served under a key (KEY=NAME)")
    ap.add_argument("--provider_config", action="append", default=[], help="KEY=JSON config, repeatable")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    ap.add_argument("--port", type=int, default=8001, help="port (0: any free port; default 8001)")
    ap.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    ap.add_argument("--max_mb", type=float, default=64, help="largest request body in MB (default 64)")
    ap.add_argument("--device", default="cpu", help="device the reward models run on (default cpu)")
    ap.add_argument("--model", default=None,
                    help="Whisper model of the whisper_asr/whisper_nll providers (e.g. large-v3, embedded:base; "
                         "a --provider_config model wins)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads of the reward models (torch and CTranslate2); 0: their defaults")
    args = ap.parse_args(argv)
    if args.max_mb <= 0:
        ap.error(f"--max_mb {args.max_mb}: the request size limit must be > 0 MB")
    logging.basicConfig(level=logging.INFO)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    try:
        configs = provider_configs(args.providers, args.provider_config, args.model)
    except ValueError as err:
        ap.error(str(err))
    try:
        server = make_server(args.providers.split(","), configs, args.host, args.port, args.token,
                             int(args.max_mb * (1 << 20)), args.device)
    except (KeyError, ValueError, ImportError, OSError, RuntimeError) as err:  # a bad provider, config or port
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, OSError) and err.errno == errno.EADDRINUSE:
            message = f"port {args.port} on {args.host} is in use: pick another --port (0: any free port)"
        print(f"f5rl.rewards.serve: error: {message}", file=sys.stderr)
        sys.exit(2)
    print(f"serving {sorted(server.providers)} on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
