"""The shell every HTTP adapter shares: one client, the key, the SSE request, usage, the end.

An adapter says only what differs per wire format — its URL, auth headers, request body and
pure event parser. The loop here yields text as it comes, keeps the last usage report, and
insists the stream really finished: an end marker or a finish reason, else ``malformed_stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from httpx_sse import ServerSentEvent

from council.common.settings import ModelSpec, ProviderSpec
from council.model_runner.providers.base import Finish, ProviderError, StreamItem, TextDelta, UsageReport
from council.model_runner.providers.http_errors import new_client, open_event_stream, request_timeout, require_key
from council.schemas.jobs import Job

__all__ = ["HttpStreamProvider"]

END_GRACE_S = 0.25


async def _read_to_the_end(events: AsyncIterator[ServerSentEvent]) -> None:
    """Read what follows the end marker (the body's own end, normally at once), so the connection
    goes back to the pool; a server that keeps it open after the end is not waited on."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(END_GRACE_S):
            async for _ in events:
                pass


class HttpStreamProvider:
    wire = "provider"  # how error messages name the stream

    def __init__(self, spec: ProviderSpec, env: Mapping[str, str]) -> None:
        self._spec = spec
        self._env = env
        # One client per adapter: its pool is shared by every concurrent call to this provider.
        self._client = new_client()

    # ---- what a wire format defines -----------------------------------------------------------

    def url(self, model: ModelSpec) -> str:
        raise NotImplementedError

    def auth_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError

    def fixed_headers(self) -> dict[str, str]:
        return {}

    def body(self, model: ModelSpec, job: Job) -> bytes:
        raise NotImplementedError

    def parse(self, event: ServerSentEvent) -> list[StreamItem]:
        raise NotImplementedError

    def merge_usage(self, old: UsageReport | None, new: UsageReport) -> UsageReport:
        return new  # most formats report running totals: the last is the whole

    # ---- the shared loop ----------------------------------------------------------------------

    async def stream(self, model: ModelSpec, job: Job) -> AsyncIterator[StreamItem]:
        key = require_key(self._spec, self._env)
        headers = {**self.fixed_headers(), **self._spec.headers, **(self.auth_headers(key) if key else {})}
        usage: UsageReport | None = None
        reason: str | None = None
        ended = False
        async with open_event_stream(
            self._client,
            self.url(model),
            content=self.body(model, job),
            headers=headers,
            http_timeout=request_timeout(model),
            secrets=[key] if key else [],
        ) as events:
            async for event in events:
                for item in self.parse(event):
                    if isinstance(item, TextDelta):
                        yield item
                    elif isinstance(item, UsageReport):
                        usage = self.merge_usage(usage, item)
                    elif item.reason is not None:
                        reason = item.reason
                    else:
                        ended = True  # the format's end marker ([DONE], message_stop)
                if ended:
                    break
            if ended:
                await _read_to_the_end(events)
        # Some servers close without an end marker; a finish reason already said the answer is whole.
        if not ended and reason is None:
            raise ProviderError("malformed_stream", f"{self.wire} stream ended before it finished", retryable=True)
        if usage is not None:
            yield usage
        yield Finish(reason=reason)

    async def aclose(self) -> None:
        await self._client.aclose()
