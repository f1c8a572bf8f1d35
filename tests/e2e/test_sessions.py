"""Sessions as a user meets them: `council chat` in a terminal, and a turn that outlives its orchestrator."""

from __future__ import annotations

import subprocess
import time

import httpx

from council.cli import service_command
from tests.e2e.procs import Services

SESSIONS = "/api/v1/sessions"


def chat(url: str, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`council chat` with ``lines`` typed at its prompt, then end of input."""
    command = service_command("chat", "--url", url, "--plain", *args)
    return subprocess.run(command, input="".join(f"{line}\n" for line in lines), capture_output=True, text=True, timeout=120)


def test_council_chat_holds_a_three_turn_conversation_and_picks_it_up_again(services: Services) -> None:
    url = services.start_gateway()
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    questions = ["How do I start learning Rust?", "Which book did you mean?", "And after the book?"]
    talked = chat(url, questions, "--mission", "Mentor a new Rust programmer")
    assert talked.returncode == 0, talked.stderr
    session_id = talked.stderr.split()[1]
    assert talked.stdout.count("you> ") == 4  # three questions, then the prompt that met end of input
    assert talked.stdout.count("Council synthesis:") == 3  # each turn's final answer, printed once
    # The simulated chairman says which earlier question it follows up on: the conversation reached it.
    assert 'Following up on "How do I start learning Rust?"' in talked.stdout
    assert 'Following up on "Which book did you mean?"' in talked.stdout

    view = httpx.get(f"{url}{SESSIONS}/{session_id}", params={"format": "json"}, timeout=10).json()
    assert [t["question"] for t in view["turns"]] == questions
    assert [t["status"] for t in view["turns"]] == ["completed"] * 3
    assert view["mission"] == "Mentor a new Rust programmer"

    again = chat(url, ["/quit"], "--session", session_id)
    assert again.returncode == 0, again.stderr
    for question in questions:
        assert f"you> {question}" in again.stdout  # the conversation so far, recapped


def test_council_chat_in_group_mode_shows_each_pass_and_whom_each_message_builds_on(services: Services) -> None:
    url = services.start_gateway()
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    talked = chat(url, ["Python or Rust first?"], "--mode", "group")
    assert talked.returncode == 0, talked.stderr
    session_id = talked.stderr.split()[1]
    assert "Pass 1 of 2: discussion" in talked.stdout and "Pass 2 of 2: discussion" in talked.stdout  # live rows
    view = httpx.get(f"{url}{SESSIONS}/{session_id}", params={"format": "json"}, timeout=10).json()
    assert view["mode"] == "group"
    messages = view["turns"][0]["discussion"]["messages"]
    for message in messages:
        building = f" (builds on {', '.join(message['builds_on'])})" if message["builds_on"] else ""
        assert f"{message['model']}{building}: {message['text'].strip()}" in talked.stdout
    assert any(m["builds_on"] for m in messages if m["round"] == 2)


def test_a_turn_completes_when_its_orchestrator_is_killed_mid_turn(slow_services: Services) -> None:
    services = slow_services
    url = services.start_gateway()
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    with httpx.Client(base_url=url, timeout=10) as http:
        session_id = http.post(SESSIONS, json={}).json()["session_id"]
        first = http.post(f"{SESSIONS}/{session_id}/messages", json={"content": "First question?"})
        assert first.status_code == 202
        deadline = time.monotonic() + 60
        while http.get(f"{SESSIONS}/{session_id}", params={"format": "json"}).json()["turns"][0]["status"] != "running":
            assert time.monotonic() < deadline, "the turn never started"
            time.sleep(0.05)
        services.kill("orchestrator")  # SIGKILL, mid-turn
        services.start("orchestrator", "orchestrator")
        while (turn := http.get(f"{SESSIONS}/{session_id}", params={"format": "json"}).json()["turns"][0])["status"] not in (
            "completed",
            "failed",
            "cancelled",
        ):
            assert time.monotonic() < deadline, f"the turn is still {turn['status']}"
            time.sleep(0.1)
        assert turn["status"] == "completed" and turn["final_answer"]
        second = http.post(f"{SESSIONS}/{session_id}/messages", json={"content": "Second question?"})
        assert second.status_code == 202
