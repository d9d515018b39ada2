"""The API's access control on aiohttp: who is asking, and whether they may (see
:mod:`stream.sinks.auth` for the rules), plus the sign-in and sign-out pages.

The middleware runs inside the API's error middleware, so its refusals are counted in
``/metrics`` like any answer; it answers them itself, because a 401 must keep its
``WWW-Authenticate`` header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape
from urllib.parse import quote, urlsplit

import orjson
from aiohttp import web

from stream.render.html import page
from stream.sinks.auth import COOKIE, SESSION_SECONDS, Auth

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACTOR = web.RequestKey("actor", str | None)  # type: ignore[arg-type]
"""The name of the token the request came with (None: no credentials)."""
CSRF = web.RequestKey("csrf", str | None)  # type: ignore[arg-type]
"""The session's CSRF token, for the forms a page renders (None without a session)."""
OPEN_PATHS = frozenset({"/healthz", "/login"})
"""Answered without credentials: a load balancer's health check, and the sign-in page."""
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITES_OFF = ("writes are turned off: this server has no API token configured (set "
              "CHURNWATCH_API_TOKEN or CHURNWATCH_API_TOKENS_FILE and restart serve)")  # fmt: skip


def _refuse(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="churnwatch"'} if status == 401 else None
    return web.Response(body=orjson.dumps({"error": message, "status": status}), status=status,
                        content_type="application/json", headers=headers)  # fmt: skip


def redirect(location: str) -> web.Response:
    """A 303 answer (returned, not raised: the API's error middleware turns raised HTTP
    exceptions into error bodies)."""
    return web.Response(status=303, headers={"Location": location})


def _same_origin(request: web.Request) -> bool:
    """A browser names the page a request came from in ``Origin``; it must be this host. An
    absent header (a command-line client, an old browser) is judged by the CSRF token alone."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


def local_path(target: str | None) -> str:
    """A redirect target that stays on this site (``/...`` but not ``//host``), else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def auth_middleware(auth: Auth, pages: frozenset[str]) -> Callable:
    """``pages``: the route names a browser reads; without credentials they go to sign-in."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[ACTOR] = request[CSRF] = None
        header = request.headers.get("Authorization")
        cookie = request.cookies.get(COOKIE)
        via = None
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return _refuse(401, "send the token as 'Authorization: Bearer <token>'")
            name = auth.name_of(token.strip())
            if name is None:
                return _refuse(403, "the token is not valid for this server")
            request[ACTOR], via = name, "bearer"
        else:
            name = auth.session_name(cookie)
            if name is not None:
                request[ACTOR], via = name, "cookie"
                request[CSRF] = auth.csrf(cookie)  # type: ignore[arg-type]
        write = request.method not in _READS
        if request.path in OPEN_PATHS:
            return await handler(request)
        if via is None:
            if auth.enabled:
                if not write and request.match_info.route.name in pages:
                    return redirect("/login?next=" + quote(request.path_qs, safe=""))
                return _refuse(401, "this server needs a token: 'Authorization: Bearer <token>'")
            if write:
                return _refuse(403, WRITES_OFF)
        elif write and via == "cookie":
            given = request.headers.get("X-CSRF-Token")
            if given is None and request.content_type == "application/x-www-form-urlencoded":
                given = (await request.post()).get("csrf")  # type: ignore[assignment]
            if not _same_origin(request) or not auth.csrf_ok(cookie, given):  # type: ignore[arg-type]
                return _refuse(403, "this form did not come from a churnwatch page (reload the "
                                    "page and try again)")  # fmt: skip
        return await handler(request)

    return check


def _login_page(auth: Auth, target: str, problem: str | None = None) -> str:
    if not auth.enabled:
        body = ("<p>Sign-in is off: this server has no API token configured. Every page can be "
                "read without one; acknowledging, snoozing, dismissing and notes are turned off."
                '</p><p><a href="/">← accounts at risk</a></p>')  # fmt: skip
        return page("Sign in", body)
    error = f'<p class="stale">{escape(problem)}</p>' if problem else ""
    body = (
        f"{error}<p>Paste the API token you were given. The page then keeps you signed in "
        f"for {SESSION_SECONDS // 3600} hours in this browser.</p>"
        '<form method="post" action="/login" class="action">'
        f'<input type="hidden" name="next" value="{escape(target)}">'
        '<label>API token <input type="password" name="token" autocomplete="current-password" '
        'required></label> <button type="submit">Sign in</button></form>'
    )
    return page("Sign in", body)


def add_auth_routes(app: web.Application, auth: Auth) -> None:
    async def login_form(request: web.Request) -> web.Response:
        target = local_path(request.query.get("next"))
        return web.Response(text=_login_page(auth, target), content_type="text/html")

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        target = local_path(str(form.get("next") or "/"))
        token = form.get("token")
        name = auth.name_of(token) if isinstance(token, str) and token else None
        if not auth.enabled or not _same_origin(request) or name is None:
            problem = "That token is not valid for this server." if auth.enabled else None
            return web.Response(text=_login_page(auth, target, problem), status=403,
                                content_type="text/html")  # fmt: skip
        response = redirect(target)
        secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
        response.set_cookie(COOKIE, auth.session(name), max_age=SESSION_SECONDS, path="/",
                            httponly=True, samesite="Strict", secure=secure)  # fmt: skip
        return response

    async def logout(request: web.Request) -> web.Response:
        response = redirect("/login")
        response.del_cookie(COOKIE, path="/")
        return response

    app.router.add_get("/login", login_form, name="login")
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
