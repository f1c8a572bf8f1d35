"""The page's files: the event types it listens for, and the vendored libraries as pinned."""

from __future__ import annotations

import hashlib
import re

from council.gateway.page import WEB_DIR
from council.schemas.api import RESET_TYPE
from council.schemas.events import EVENT_TYPES


def test_the_page_listens_for_every_event_type_the_stream_sends() -> None:
    source = (WEB_DIR / "view.js").read_text()
    listed = re.search(r"export const EVENT_TYPES = \[(.*?)\];", source, re.S)
    assert listed is not None
    assert set(re.findall(r'"([a-z_.]+)"', listed.group(1))) == {*EVENT_TYPES, RESET_TYPE}


def test_each_vendored_library_matches_its_pinned_checksum_and_has_its_license() -> None:
    vendor = WEB_DIR / "vendor"
    rows = re.findall(r"^\| `([^`]+\.js)` .*\| `([0-9a-f]{64})` \|$", (vendor / "README.md").read_text(), re.M)
    assert {name for name, _ in rows} == {path.name for path in vendor.glob("*.js")}
    for name, digest in rows:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert (vendor / "LICENSE.marked").exists() and (vendor / "LICENSE.dompurify").exists()
