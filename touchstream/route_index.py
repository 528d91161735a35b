"""``RouteIndex``: the app's routes tried by the path's first segment, not one by one.

FastAPI (since 0.137) keeps ``include_router`` lazy: ``app.routes`` holds one node per
included router, and a request tries every route of every router before its own, each
try setting and restoring keys in the request's scope. With this app's ~230 routes that
was ~0.4 ms of CPU for every request to a route late in the list (``/health``, every
command, every webhook; measured in-process, 2,000 tries), 38% of the event loop in
``bench phone``'s py-spy profile.

The index maps the first segment of the path (``customers`` in
``/customers/c-1/timeline``) to the top-level routes that hold a route whose path starts
with that segment, in the app's order, plus every route whose first segment is a
parameter or that has no path (a ``Host``); a request tries only those. Which route
answers does not change: a route can match a path only if its first segment is the
path's, so the first full match among the candidates is the first full match among all
routes. A path that no candidate matches at all, and whose trailing-slash twin none
matches either, gets the router's own 404 at once (FastAPI's dispatch would have tried
every route twice more, ~1 ms, to reach the same answer), unless the router holds
low-priority (front-end) routes. Everything else goes to FastAPI's router unchanged: a
path a candidate matches with another method (405), a trailing-slash redirect, non-HTTP
scopes, requests carrying FastAPI's telemetry (which records the route on the way
down), and every request if the app's router has form limits of its own.

The index is built on the first request and again whenever the number of top-level
routes changes; a route added later to a router already included is still reached
through the fall-back, unless an earlier route of its segment matches the same path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

#: the segment key for routes that may match any first segment
ANY = None


def first_segment(path: str) -> str | None:
    """``"customers"`` for ``/customers/{id}``; ``ANY`` when the first segment is a
    parameter (``/{tenant}/…``), so the route is a candidate for every path."""
    segment = path.lstrip("/").split("/", 1)[0]
    return ANY if "{" in segment else segment


def _paths(route: BaseRoute) -> Iterator[str | None]:
    """The paths a top-level route may answer: its own, or (an included router, which
    has no path of its own) those of every route it includes; ``None`` if unknown."""
    contexts = getattr(route, "effective_route_contexts", None)
    if contexts is not None:
        for context in contexts():
            starlette_route = getattr(context, "starlette_route", None)
            yield getattr(starlette_route or context, "path", None)
        return
    yield getattr(route, "path", None)


def segments_of(route: BaseRoute) -> set[str | None]:
    """The first segments ``route`` can match; ``{ANY}`` among them if any path is
    unknown or starts with a parameter."""
    found: set[str | None] = set()
    for path in _paths(route):
        found.add(ANY if path is None else first_segment(path))
    return found or {ANY}


def build_index(routes: Iterable[BaseRoute]) -> tuple[dict[str, tuple[BaseRoute, ...]],
                                                     tuple[BaseRoute, ...]]:
    """(segment -> candidate routes in order, the candidates of any other segment)."""
    routes = list(routes)
    keyed = [(route, segments_of(route)) for route in routes]
    names = {segment for _, segments in keyed for segment in segments if segment is not ANY}
    by_segment = {name: tuple(route for route, segments in keyed
                              if name in segments or ANY in segments)
                  for name in names}
    anywhere = tuple(route for route, segments in keyed if ANY in segments)
    return by_segment, anywhere


class RouteIndex:
    """An ASGI app standing in for ``router``'s dispatch (see the module docstring);
    install with ``RouteIndex.install(app.router)`` once every route is added."""

    def __init__(self, router: Router, fallback: ASGIApp) -> None:
        self.router = router
        self.fallback = fallback
        self._built_for = -1
        self._by_segment: dict[str, tuple[BaseRoute, ...]] = {}
        self._anywhere: tuple[BaseRoute, ...] = ()
        self._answers_misses = False
        # the router's own form limits are set into the scope by its dispatch alone
        self._form_limits = bool(getattr(router, "form_limits", None))

    @classmethod
    def install(cls, router: Router) -> RouteIndex:
        """Put an index in front of ``router``'s own dispatch (its ``middleware_stack``,
        which the app's middleware calls), keeping that dispatch as the fall-back."""
        index = cls(router, router.middleware_stack)
        router.middleware_stack = index
        return index

    def candidates(self, path: str) -> tuple[BaseRoute, ...]:
        """The top-level routes that may match ``path``, in the app's order."""
        if len(self.router.routes) != self._built_for:
            self._by_segment, self._anywhere = build_index(self.router.routes)
            self._answers_misses = _no_low_priority_routes(self.router)
            self._built_for = len(self.router.routes)
        segment = path.lstrip("/").split("/", 1)[0]
        return self._by_segment.get(segment, self._anywhere)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "fastapi.telemetry" in scope or self._form_limits:
            await self.fallback(scope, receive, send)
            return
        path = _route_path(scope)
        partial = False
        for route in self.candidates(path):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.setdefault("router", self.router)
                _update_scope(scope, child_scope)
                await route.handle(scope, receive, send)
                return
            partial = partial or match is Match.PARTIAL
        if partial or not self._answers_misses or self._redirects(scope):
            await self.fallback(scope, receive, send)
            return
        # Nothing FastAPI's dispatch would try next can match: its last step, at once.
        scope.setdefault("router", self.router)
        await self.router.default(scope, receive, send)

    def _redirects(self, scope: Scope) -> bool:
        """Whether the router would redirect to the path with its trailing slash added or
        removed (a route matches that path), as FastAPI's dispatch checks."""
        path: str = scope["path"]
        if not getattr(self.router, "redirect_slashes", False) or _route_path(scope) == "/":
            return False
        other = dict(scope, path=path.rstrip("/") if path.endswith("/") else path + "/")
        return any(route.matches(other)[0] is not Match.NONE
                   for route in self.candidates(_route_path(other)))


def _no_low_priority_routes(router: Router) -> bool:
    """True if FastAPI's router is known to hold no low-priority routes (its front-end
    routes, tried after every other route misses): only then may a miss be answered
    without it. Unknown (another FastAPI, a plain Starlette router): False."""
    own = getattr(router, "_low_priority_routes", None)
    if own is None or own:
        return False
    for route in router.routes:
        nested = getattr(route, "effective_low_priority_routes", None)
        if nested is not None and nested():
            return False
    return True


def _route_path(scope: Scope) -> str:
    """The path the routes match against: ``scope["path"]`` less a mounted ``root_path``
    (as Starlette's ``get_route_path``)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and (
            len(path) == len(root_path) or path[len(root_path)] == "/"):
        return path[len(root_path):]
    return path


def _update_scope(scope: Scope, child_scope: dict[str, Any]) -> None:
    """Merge a match's scope into the request's, FastAPI's own ``fastapi`` key merged
    rather than replaced (as FastAPI's router does)."""
    nested = child_scope.get("fastapi")
    if isinstance(nested, dict):
        child_scope = {k: v for k, v in child_scope.items() if k != "fastapi"}
        scope.setdefault("fastapi", {}).update(nested)
    scope.update(child_scope)
