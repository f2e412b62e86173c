"""``remote``: score with a provider served by ``python -m f5rl.rewards.serve``.

Config: ``url`` (``http://host:port``; when not set, ``$F5RL_REWARD_SERVER``, then ``$WHISPER_SERVER``,
then ``http://127.0.0.1:8001``), ``provider`` (name on the server), ``token``,
``timeout`` seconds, ``retries`` with exponential ``backoff``. A server that cannot be reached
after the retries gives NaN scores for the batch with the reason logged; training goes on.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request

from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider
from f5rl.rewards.registry import register
from f5rl.rewards.wire import batch_to_json, output_from_json

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8001"


@register("remote")
class RemoteReward(RewardProvider):
    def __init__(self, url: str | None = None, provider: str = "", token: str | None = None,
                 timeout: float = 60.0, retries: int = 2, backoff: float = 0.5, **kw) -> None:
        super().__init__(**kw)
        if not provider:
            raise ValueError("remote reward needs config.provider (the provider's name on the server)")
        # no URL configured: the environment names the server (LLaSA's recipe exports WHISPER_SERVER)
        url = url or os.environ.get("F5RL_REWARD_SERVER") or os.environ.get("WHISPER_SERVER") or DEFAULT_URL
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        self.url, self.provider, self.token = url.rstrip("/"), provider, token
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def _post(self, payload: bytes) -> dict:
        req = urllib.request.Request(f"{self.url}/score/{self.provider}", data=payload, method="POST",
                                     headers={"Content-Type": "application/json"})
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read())

    def compute(self, batch: RewardBatch) -> RewardOutput:
        payload = json.dumps(batch_to_json(batch)).encode()
        last = ""
        for attempt in range(self.retries + 1):
            try:
                return output_from_json(self._post(payload))
            except urllib.error.HTTPError as err:
                detail = err.read().decode(errors="replace")[:300]
                last = f"HTTP {err.code} from {self.url}: {detail}"
                if err.code in (400, 401, 404, 413):
                    break  # the request itself is wrong; retrying will not help
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
                last = f"reward server {self.url} unreachable: {err}"
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        log.error("remote reward %s: %s; scores are NaN for this batch", self.provider, last)
        return RewardOutput.nan(len(batch), last)
