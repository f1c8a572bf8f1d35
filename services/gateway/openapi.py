"""The OpenAPI document, completed where Litestar cannot see: pure, from the generated one.

The routes read their bodies themselves (to answer with our own problems), so Litestar knows
neither the request bodies nor the problem+json and SSE answers; this fills them in, with the
catalogue's model ids as the enums a schema-driven client or fuzzer needs.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from council.common.keys import KEY_PATTERN
from council.common.settings import MAX_TOKENS_LIMIT, Settings
from council.gateway.problems import PROBLEM_JSON, ProblemBody
from council.gateway.sessions import MAX_ROUNDS
from council.schemas.api import CouncilStatus, SessionView, SkipRequest
from council.schemas.ids import COUNCIL_ID_PATTERN, SESSION_ID_PATTERN
from council.schemas.result import CouncilResult

__all__ = ["complete_openapi"]

API = "/api/v1/council"
SESSIONS = "/api/v1/sessions"
SESSION_POSITION = r"^[0-9]{8}\.[0-9]{9}\.session_[0-9]{8}_[0-9]{4}_[a-z0-9]{6,}$"
REF = "#/components/schemas/{name}"
FRAME = {  # one Server-Sent Event: ``data`` is the event's JSON envelope, ``id`` its seq
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string"},
        "data": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
SSE = {"text/event-stream": {"schema": FRAME}}
SEQ_MAX = 2**63 - 1
PARAMETERS: dict[str, dict[str, Any]] = {  # what the routes accept, where Litestar says only "string"
    "council_id": {"type": "string", "pattern": COUNCIL_ID_PATTERN.pattern},
    "session_id": {"type": "string", "pattern": SESSION_ID_PATTERN.pattern},
    "format": {"enum": ["json", "markdown", "text"]},
    "Last-Event-ID": {"type": "string", "pattern": "^[0-9]{1,18}$"},
    "after": {"type": "integer", "minimum": 0, "maximum": SEQ_MAX},
    "before": {"type": "string", "pattern": r"^[0-9]{8}\.[0-9]{9}\.council_[0-9]{8}_[0-9]{4}_[a-z0-9]{6,}$"},
}


def _schema_of(kind: type, components: dict[str, Any]) -> dict[str, Any]:
    """A $ref to ``kind`` (msgspec's JSON Schema), its definitions added to ``components``."""
    (schema,), definitions = msgspec.json.schema_components([kind], ref_template=REF)
    components.update(definitions)
    return schema


def _query_schema(settings: Settings) -> dict[str, Any]:
    """QueryRequest as this gateway accepts it: the catalogue's ids, the limits it checks."""
    ids = [m.id for m in settings.models]
    council = settings.council
    return {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "pattern": r"\S", "maxLength": council.max_prompt_chars},
            "models": {
                "type": ["array", "null"],
                "items": {"enum": ids},
                "minItems": 1,
                "maxItems": council.max_members,
                "uniqueItems": True,
            },
            "chairman": {"enum": [*ids, None]},
            "max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TOKENS_LIMIT},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "stream_tokens": {"type": "boolean"},
            "format": {"enum": ["json", "markdown", "text", None]},
            "preset": {"enum": [*sorted(settings.presets), None]},
        },
    }


def _session_schema(settings: Settings) -> dict[str, Any]:
    """SessionRequest as this gateway accepts it: a council session, or a group one with its passes."""
    panel = _query_schema(settings)["properties"]
    common = {
        "mission": {"type": ["string", "null"], "maxLength": settings.council.max_prompt_chars},
        "members": panel["models"],
        "chairman": {"enum": [*panel["chairman"]["enum"], ""]},  # "": the default (council), none (group)
        "max_tokens": panel["max_tokens"],
        "temperature": panel["temperature"],
    }
    council = {"type": "object", "properties": {**common, "mode": {"const": "council"}, "rounds": {"type": "null"}}}
    rounds = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ROUNDS}
    group = {"type": "object", "required": ["mode"], "properties": {**common, "mode": {"const": "group"}, "rounds": rounds}}
    return {"anyOf": [council, group]}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def complete_openapi(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``document`` with request bodies, id patterns, problem answers and SSE content types."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    problem = {
        "description": "An RFC 9457 problem",
        "content": {PROBLEM_JSON: {"schema": _schema_of(ProblemBody, components)}},
    }
    components["QueryRequest"] = _query_schema(settings)
    _schema_of(SkipRequest, components)
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in [s for s in responses if s.startswith(("4", "5"))]:
                del responses[status]  # Litestar's generic ValidationException shape is not what we send
            responses["4XX"] = problem
            responses["503"] = problem
            for parameter in operation.get("parameters", []):
                if parameter.get("name") in PARAMETERS:
                    parameter["schema"] = PARAMETERS[parameter["name"]]
                if parameter.get("name") == "before" and path == SESSIONS:
                    parameter["schema"] = {"type": "string", "pattern": SESSION_POSITION}
            if path == f"{SESSIONS}/{{session_id}}/events":
                responses["200"] = {"description": "The session's events, replayed, then live", "content": SSE}
            elif path.endswith("/events") or path == f"{API}/stream":
                responses["200"] = {"description": "The council's events, live, to its terminal event", "content": SSE}
            if path.endswith("/events") and not path.startswith(SESSIONS):
                responses["204"] = {"description": "The client has seen the terminal event already"}
            if path == f"{API}/{{council_id}}" and method == "get":
                content = responses["200"].setdefault("content", {})
                status, result = (_schema_of(kind, components) for kind in (CouncilStatus, CouncilResult))
                content["application/json"] = {"schema": {"anyOf": [result, status]}}
                for media in ("text/markdown", "text/plain"):
                    content[media] = {"schema": {"type": "string"}}
            if path == f"{SESSIONS}/{{session_id}}" and method == "get":
                content = responses["200"].setdefault("content", {})
                content["application/json"] = {"schema": _schema_of(SessionView, components)}
                for media in ("text/markdown", "text/plain"):
                    content[media] = {"schema": {"type": "string"}}
    if (query := paths.get(f"{API}/query", {}).get("post")) is not None:
        query["requestBody"] = _json_body({"$ref": REF.format(name="QueryRequest")})
    if (cookie := paths.get("/api/v1/auth/cookie", {}).get("post")) is not None:
        key = {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$"}
        cookie["requestBody"] = _json_body({"type": "object", "required": ["key"], "properties": {"key": key}})
        for operation in paths["/api/v1/auth/cookie"].values():
            operation["responses"]["204"] = {"description": "Done: the cookie is set (or cleared)"}
    if (skip := paths.get(f"{API}/{{council_id}}/skip", {}).get("post")) is not None:
        skip["requestBody"] = _json_body({"$ref": REF.format(name="SkipRequest")})
    if (create := paths.get(SESSIONS, {}).get("post")) is not None:
        components["SessionRequest"] = _session_schema(settings)
        create["requestBody"] = {**_json_body({"$ref": REF.format(name="SessionRequest")}), "required": False}
    if (message := paths.get(f"{SESSIONS}/{{session_id}}/messages", {}).get("post")) is not None:
        limit = settings.council.max_prompt_chars
        components["MessageRequest"] = {
            "type": "object",
            "required": ["content"],
            "properties": {"content": {"type": "string", "pattern": r"\S", "maxLength": limit}},
        }
        message["requestBody"] = _json_body({"$ref": REF.format(name="MessageRequest")})
    return document
