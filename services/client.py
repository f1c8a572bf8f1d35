"""A small Python client for the council API: submit, get, wait, and (live) stream events.

from services.client import CouncilClient
with CouncilClient("http://127.0.0.1:8000") as client:
    accepted = client.submit("What is the best way to learn Rust?")
    result = client.wait(accepted.council_id)
    print(result.final_answer.text)
"""

from __future__ import annotations

import time
from types import TracebackType

import httpx
import msgspec

from schemas.api import CouncilStatus, QueryAccepted, QueryRequest
from schemas.codec import decode_as, encode
from schemas.result import CouncilResult

__all__ = ["CouncilClient", "CouncilError"]


class CouncilError(Exception):
    """The API answered with a problem (RFC 9457); ``detail`` says what is wrong."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


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


class CouncilClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

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
