"""``council chat``: a conversation in the terminal, each answer deliberated live by the council.

Each line you type is the session's next message; its turn (a council that sees the
conversation so far) is followed live like ``council ask``, then its final answer is printed.
``--session ID`` picks a conversation up again, following a turn still under way first.
"""

from __future__ import annotations

import argparse
import sys
import uuid

import httpx

from council.client import CouncilClient, CouncilError
from council.client.live import answer_text, follow
from council.schemas.api import SessionRequest, SessionView

__all__ = ["chat"]

QUIT = frozenset({"/quit", "/exit"})


def _open(client: CouncilClient, args: argparse.Namespace) -> SessionView:
    if args.session:
        return client.session(args.session)
    request = SessionRequest(
        mission=args.mission or None,
        members=[m for m in args.models.split(",") if m] or None,
        chairman=args.chairman,
        mode=args.mode,
    )
    return client.create_session(request)


def _recap(session: SessionView) -> None:
    for turn in session.turns:
        print(f"you> {turn.question}")
        answer = turn.final_answer
        print(answer_text(answer, turn.discussion) if answer is not None else f"({turn.status})")


def chat(args: argparse.Namespace) -> int:
    """Hold a conversation on stdin/stdout until end of input or /quit."""
    with CouncilClient(args.url) as client:
        try:
            session = _open(client, args)
        except CouncilError as exc:
            print(f"council: {exc.title}: {exc.detail}", file=sys.stderr)
            return 2
        except httpx.TransportError as exc:
            print(f"council: cannot reach {client.base_url} ({exc}); is `council up` running?", file=sys.stderr)
            return 2
        session_id = session.session_id
        print(f"session {session_id} (resume with: council chat --session {session_id}; /quit to leave)", file=sys.stderr)
        _recap(session)
        running = next((t.turn_id for t in session.turns if t.status in ("queued", "running")), None)
        if running is not None and follow(client, running, 0, sys.stdout, args.plain, answer_only=True) == 130:
            return 130
        while True:
            try:
                line = input("you> ")
            except EOFError:
                return 0
            text = line.strip()
            if not text:
                continue
            if text in QUIT:
                return 0
            try:
                accepted = client.send_message(session_id, text, idempotency_key=uuid.uuid4().hex)
            except CouncilError as exc:
                print(f"council: {exc.title}: {exc.detail}", file=sys.stderr)
                continue
            except httpx.TransportError as exc:
                print(f"council: cannot reach {client.base_url} ({exc})", file=sys.stderr)
                return 1
            if follow(client, accepted.council_id, 0, sys.stdout, args.plain, answer_only=True) == 130:
                return 130  # interrupted: detached or cancelled, as the prompt chose
