"""Bytes that are not HTTP get the same problem+json every other error of the gateway gets."""

from __future__ import annotations

import json
import socket

from tests.e2e.procs import Services


def test_a_request_that_is_not_http_gets_a_problem(services: Services) -> None:
    services.start_gateway()
    with socket.create_connection(("127.0.0.1", services.port), timeout=10) as connection:
        connection.sendall(b"NOT HTTP AT ALL\x00\x01\r\n\r\n")
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["detail"]
