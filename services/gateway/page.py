"""The web page: the app shell at ``/`` and ``/councils/{id}``, its files under ``/static``.

No build step: plain HTML, CSS and ES modules from the package, the vendored libraries beside
them (``web/vendor/README.md``). The Content-Security-Policy lets the page run only its own
scripts, so even model output that got past the sanitizer could not run inline code.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.router import Router
from litestar.static_files import create_static_files_router

from council.gateway.auth import PUBLIC

__all__ = ["WEB_DIR", "PageController", "static_files"]

# Resolved: an editable install links each file, and the static router serves only real paths inside it.
WEB_DIR = Path(__file__).resolve().parent / "web"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _shell() -> Response[bytes]:
    return Response((WEB_DIR / "index.html").read_bytes(), media_type="text/html", headers=PAGE_HEADERS)


class PageController(Controller):
    """The app shell; the page's script decides what to show from the path."""

    path = "/"
    include_in_schema = False
    opt = {PUBLIC: True}  # noqa: RUF012  (the data behind the page needs a key; the page itself does not)

    @get("/")
    async def home(self) -> Response[bytes]:
        """Ask a question, and the recent councils."""
        return _shell()

    @get("/councils/{council_id:str}")
    async def council_page(self, council_id: str) -> Response[bytes]:
        """One council, live (the script asks the API and shows its problem if there is none)."""
        return _shell()

    @get("/sessions/{session_id:str}")
    async def session_page(self, session_id: str) -> Response[bytes]:
        """One conversation, live, and its next question."""
        return _shell()


def static_files() -> Router:
    """The page's scripts, styles and vendored libraries, revalidated on every load."""
    return create_static_files_router(
        path="/static",
        directories=[WEB_DIR],
        cache_control=CacheControlHeader(no_cache=True),
        include_in_schema=False,
        opt={PUBLIC: True},
    )
