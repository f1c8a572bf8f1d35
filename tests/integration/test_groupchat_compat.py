"""GroupChatLLM's three calls, driven as the seed's curl walkthrough shows them."""

from __future__ import annotations

import httpx
from httpx_sse import aconnect_sse

from tests.integration.test_sessions import SESSIONS, http, session_settings  # noqa: F401  (the fixtures)


async def test_the_seed_walkthrough_models_then_session_then_a_streamed_message(http: httpx.AsyncClient) -> None:  # noqa: F811
    # 1. Check available models
    panel = (await http.get("/api/panels/available-models")).json()
    ids = [m["id"] for m in panel["models"]]
    assert set(panel["default"]) <= set(ids)
    assert {"id", "name", "role", "icon", "color_theme", "collaboration_style"} <= set(panel["models"][0])

    # 2. Create a session
    created = await http.post(
        "/api/chat/sessions/create", json={"mission": "Discuss the future of AI", "selected_models": ids[:2]}
    )
    assert created.status_code == 200, created.text
    session = created.json()
    assert session["selected_models"] == ids[:2] and session["mission"] == "Discuss the future of AI"

    # 3. Stream a message's answer
    kinds: list[str] = []
    url = f"/api/chat/{session['session_id']}/stream"
    async with aconnect_sse(http, "GET", url, params={"message": "Hello panel"}) as source:
        async for sse in source.aiter_sse():
            if sse.event not in ("", "message"):
                kinds.append(sse.event)
    assert kinds[0] == "council.submitted" and kinds[-1] == "council.completed"

    view = (await http.get(f"{SESSIONS}/{session['session_id']}", params={"format": "json"})).json()
    assert [t["question"] for t in view["turns"]] == ["Hello panel"]
    assert view["members"] == ids[:2] and view["turns"][0]["status"] == "completed"
    assert view["mode"] == "group"  # the members answer, then answer each other
    assert {m["round"] for m in view["turns"][0]["discussion"]["messages"]} == {1, 2}


async def test_the_compatibility_routes_answer_bad_input_with_problems(http: httpx.AsyncClient) -> None:  # noqa: F811
    unknown = await http.post("/api/chat/sessions/create", json={"selected_models": ["gpt-4o"]})
    assert unknown.status_code == 422 and "gpt-4o" in unknown.json()["detail"]
    assert (await http.get("/api/chat/not-a-session/stream", params={"message": "hi"})).status_code == 400
    session_id = (await http.post("/api/chat/sessions/create", json={})).json()["session_id"]
    missing = await http.get(f"/api/chat/{session_id}/stream")
    assert missing.status_code == 400 and missing.json()["type"].endswith("missing-message")
