"""The terminal client behind `council ask` and `council watch`."""

from __future__ import annotations

import argparse
import sys

from schemas.api import QueryRequest
from services.client import CouncilClient, CouncilError

__all__ = ["ask", "watch"]


def _finish(client: CouncilClient, council_id: str) -> int:
    try:
        client.wait(council_id)
    except CouncilError as exc:
        print(f"council {council_id}: {exc.title}: {exc.detail}", file=sys.stderr)
        return 1
    print(client.get(council_id, "markdown"))
    return 0


def ask(args: argparse.Namespace) -> int:
    query = QueryRequest(
        prompt=args.prompt,
        models=[m for m in args.models.split(",") if m] or None,
        chairman=args.chairman,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
    )
    with CouncilClient(args.url) as client:
        try:
            accepted = client.submit(query)
        except CouncilError as exc:
            print(f"council: {exc.title}: {exc.detail}", file=sys.stderr)
            return 2
        if args.detach:
            print(accepted.council_id)
            return 0
        print(f"council {accepted.council_id} started", file=sys.stderr)
        return _finish(client, accepted.council_id)


def watch(args: argparse.Namespace) -> int:
    with CouncilClient(args.url) as client:
        return _finish(client, args.council_id)
