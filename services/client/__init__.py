"""A small Python client for the council API: submit, get, wait, and (live) stream events.

from council.client import CouncilClient
with CouncilClient("http://127.0.0.1:8000") as client:
    accepted = client.submit("What is the best way to learn Rust?")
    result = client.wait(accepted.council_id)
    print(result.final_answer.text)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import httpx
import msgspec
from httpx_sse import connect_sse

from council.schemas.api import (
    RESET_TYPE,
    CouncilStatus,
    MessageAccepted,
    MessageRequest,
    QueryAccepted,
    QueryRequest,
    ResetEvent,
    SessionRequest,
    SessionView,
)
from council.schemas.codec import decode_as, decode_event, encode
from council.schemas.events import EVENT_TYPES, TERMINAL_TYPES, AnyEvent
from council.schemas.result import CouncilResult

__all__ = ["CouncilClient", "CouncilError", "StreamItem"]

StreamItem = AnyEvent | ResetEvent


class CouncilError(Exception):
    """The API answered with a problem (RFC 9457); ``detail`` says what is wrong."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


class _Envelope(msgspec.Struct):
    """Just enough of any event to know what it is and where the stream stands."""

    type: str
    seq: int = 0


class _Problem(msgspec.Struct):
    title: str = "error"
    detail: str = ""


def _raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        problem = decode_as(response.content, _Problem)
    except msgspec.DecodeError:
        problem = _Problem(title=response.reason_phrase, detail=response.text[:300])
    raise CouncilError(response.status_code, problem.title, problem.detail)


API_KEY_ENV = "COUNCIL_API_KEY"


class CouncilClient:
    def __init__(
        self, base_url: str = "http://127.0.0.1:8000", timeout: float = 30.0, api_key: str | None = None
    ) -> None:
        """A client of the gateway at ``base_url``; ``api_key`` (default: ``COUNCIL_API_KEY``) once auth is on."""
        self.base_url = base_url.rstrip("/")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def __enter__(self) -> CouncilClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(self, query: QueryRequest | str, idempotency_key: str | None = None) -> QueryAccepted:
        body = QueryRequest(prompt=query) if isinstance(query, str) else query
        headers = {"content-type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = self._http.post("/api/v1/council/query", content=encode(body), headers=headers)
        _raise_for_problem(response)
        return decode_as(response.content, QueryAccepted)

    def create_session(self, request: SessionRequest) -> SessionView:
        """Start a conversation."""
        response = self._http.post("/api/v1/sessions", content=encode(request), headers={"content-type": "application/json"})
        _raise_for_problem(response)
        return decode_as(response.content, SessionView)

    def session(self, session_id: str) -> SessionView:
        """A conversation: every turn's question, status and answer."""
        response = self._http.get(f"/api/v1/sessions/{session_id}", params={"format": "json"})
        _raise_for_problem(response)
        return decode_as(response.content, SessionView)

    def send_message(self, session_id: str, content: str, idempotency_key: str | None = None) -> MessageAccepted:
        """Ask the conversation's next question: its turn is a council, followed like any other."""
        headers = {"content-type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        body = encode(MessageRequest(content=content))
        response = self._http.post(f"/api/v1/sessions/{session_id}/messages", content=body, headers=headers)
        _raise_for_problem(response)
        return decode_as(response.content, MessageAccepted)

    def get(self, council_id: str, format: str = "json") -> str:
        response = self._http.get(f"/api/v1/council/{council_id}", params={"format": format})
        _raise_for_problem(response)
        return response.text

    def status(self, council_id: str) -> CouncilStatus | CouncilResult:
        raw = self.get(council_id, "json").encode()
        try:
            return decode_as(raw, CouncilResult)
        except msgspec.ValidationError:
            return decode_as(raw, CouncilStatus)

    def cancel(self, council_id: str) -> None:
        _raise_for_problem(self._http.post(f"/api/v1/council/{council_id}/cancel"))

    def wait(self, council_id: str, timeout: float = 900.0, interval: float = 0.5) -> CouncilResult:
        """Poll until the council ends; a failed or cancelled council raises CouncilError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.status(council_id)
            if isinstance(current, CouncilResult):
                return current
            if current.status in ("failed", "cancelled"):
                reason = current.error.reason if current.error else current.status
                raise CouncilError(200, f"council {current.status}", reason)
            time.sleep(interval)
        raise TimeoutError(f"{council_id} did not finish within {timeout:g}s")

    def events(
        self,
        council_id: str,
        after: int = 0,
        *,
        max_gap_s: float = 30.0,
        on_reconnect: Callable[[int], None] | None = None,
    ) -> Iterator[StreamItem]:
        """Every event of a council from ``after`` on, live, until its terminal event.

        A dropped connection is resumed from the last seq seen (``Last-Event-ID``), with backoff,
        for as long as reconnecting keeps failing for less than ``max_gap_s``. Event types are
        additive within ``v: 1``: one this client does not know (from a newer server) is skipped,
        not yielded, and a resume starts after it.
        """
        last = after
        failing_since: float | None = None
        delay = 0.2
        while True:
            try:
                headers = {"Last-Event-ID": str(last)} if last else {}
                with connect_sse(
                    self._http,
                    "GET",
                    f"/api/v1/council/{council_id}/events",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=None),
                ) as source:
                    if source.response.status_code == 204:
                        return  # the stream ended before ``last``: nothing more will come
                    if not source.response.is_success:
                        source.response.read()
                        _raise_for_problem(source.response)
                    failing_since, delay = None, 0.2
                    for sse in source.iter_sse():
                        if not sse.data:
                            continue
                        raw = sse.data.encode()
                        item: StreamItem
                        if sse.event == RESET_TYPE:
                            item = decode_as(raw, ResetEvent)
                        else:
                            try:
                                item = decode_event(raw)  # the gateway filled in its seq
                            except msgspec.ValidationError:
                                envelope = decode_as(raw, _Envelope)
                                if envelope.type in EVENT_TYPES:
                                    raise  # a type we know, malformed: a fault to report, not news
                                last = envelope.seq or last
                                continue
                        last = item.seq or last
                        yield item
                        if sse.event in TERMINAL_TYPES:
                            return
            except httpx.TransportError:
                pass
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since > max_gap_s:
                raise CouncilError(503, "stream lost", f"could not reconnect for {max_gap_s:g}s (last seq {last})")
            if on_reconnect is not None:
                on_reconnect(last)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
