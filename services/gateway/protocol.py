"""uvicorn's HTTP protocol, answering a request it cannot parse with a problem, like every other error.

uvicorn writes its own plain-text 400 for bytes that are not HTTP, before the app sees anything;
this is the same answer as problem+json, so a client reads every error of the gateway one way.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from council.gateway.problems import PROBLEM_JSON, TYPE_BASE
from council.schemas.codec import encode

__all__ = ["ProblemHttpProtocol"]


class ProblemHttpProtocol(HttpToolsProtocol):
    """httptools' protocol with its protocol-error answer as RFC 9457 problem+json."""

    def send_400_response(self, msg: str) -> None:
        """A 400 problem for a request that is not HTTP, then close."""
        body = encode({"type": TYPE_BASE + "invalid-http", "title": "Bad Request", "status": 400, "detail": msg})
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                f"content-type: {PROBLEM_JSON}\r\n".encode(),
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
