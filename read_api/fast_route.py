"""``FastReadRoute``: a read route whose ordinary request skips FastAPI's per-request
dependency solving, and whose every other request is FastAPI's own.

FastAPI solves a route's dependencies anew on every request, generically: for the
timeline route (a path id, a query model, the caller from two security schemes) that
was ~38% of a page's CPU on PostgreSQL (py-spy, ``--gil``), more than the page query's
client work. ``FastReadRoute`` (FastAPI's documented ``route_class`` hook) compiles the
route's dependency tree once, when the route is built, into a plan; a request then:

* is handed to FastAPI's own handler, untouched, whenever the plan does not cover it:
  a query parameter the query model does not name, a repeated one, any value the model
  or a path parameter rejects, or ``dependency_overrides`` in force. Validation errors,
  their shape and their order against the auth errors are therefore FastAPI's own;
* otherwise validates the path parameters and the query model with the very
  ``ModelField`` FastAPI would use, calls the same dependency callables (the
  ``authorize`` dependency and its security schemes: the same 401/403 and the same
  thread hop on a key-cache miss) and then the endpoint, which must answer a
  ``Response`` itself (as the read routes do, with orjson).

The OpenAPI document is built from the same route, so it does not change. A route the
plan cannot cover (a body, header or cookie parameters, generator or sync
dependencies, anything else) always runs FastAPI's handler.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

_SEQUENCES = (list, set, frozenset, tuple)


@dataclass(frozen=True)
class _Call:
    """A dependency to call: its name, callable and what it takes (sub-calls, the request)."""

    name: str | None
    call: Callable[..., Awaitable[Any]]
    subs: tuple["_Call", ...]
    request_names: tuple[str, ...]


@dataclass(frozen=True)
class _Plan:
    endpoint: Callable[..., Awaitable[Any]]
    subs: tuple[_Call, ...]
    request_names: tuple[str, ...]
    path: tuple[tuple[str, Any], ...]  # (name, ModelField)
    query: tuple[str, Any, dict[str, bool]] | None  # (name, ModelField, field -> is a sequence)
    overrides: Any


def _is_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None))  # noqa: B004 (a security scheme's method)


def _request_names(dependant: Any) -> tuple[str, ...] | None:
    if (dependant.websocket_param_name or dependant.response_param_name
            or dependant.background_tasks_param_name or dependant.security_scopes_param_name):
        return None
    return tuple(n for n in (dependant.request_param_name, dependant.http_connection_param_name)
                 if n)


def _sub_call(dependant: Any) -> _Call | None:
    """A dependency that takes nothing but other such dependencies and the request."""
    names = _request_names(dependant)
    if (names is None or dependant.path_params or dependant.query_params
            or dependant.header_params or dependant.cookie_params or dependant.body_params
            or dependant.concurrency is not None or not dependant.use_cache
            or not _is_async(dependant.call)):
        return None
    subs = [_sub_call(d) for d in dependant.dependencies]
    if any(s is None for s in subs):
        return None
    return _Call(dependant.name, dependant.call, tuple(s for s in subs if s is not None), names)


def _is_sequence(annotation: Any) -> bool | None:
    """True for a list-like field, False for a scalar one, None when unsure (not planned)."""
    origin = typing.get_origin(annotation)
    if origin in _SEQUENCES:
        return True
    if annotation in _SEQUENCES or any(typing.get_origin(a) in _SEQUENCES or a in _SEQUENCES
                                       for a in typing.get_args(annotation)):
        return None
    return False


def _query_plan(dependant: Any) -> tuple[str, Any, dict[str, bool]] | None | bool:
    """(name, field, fields) of the route's one query model; None without query
    parameters; False when the query is not one plain model (not planned)."""
    if not dependant.query_params:
        return None
    if len(dependant.query_params) != 1:
        return False
    field = dependant.query_params[0]
    model = field.field_info.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    fields: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        kind = _is_sequence(info.annotation)
        if kind is None or info.alias or info.validation_alias:
            return False
        fields[name] = kind
    return field.name, field, fields


def plan_of(dependant: Any, endpoint: Any, overrides: Any) -> _Plan | None:
    """The plan of a route's dependant, or None when a request must be FastAPI's."""
    names = _request_names(dependant)
    query = _query_plan(dependant)
    returns = inspect.signature(endpoint).return_annotation
    if (names is None or query is False or dependant.header_params or dependant.cookie_params
            or dependant.body_params or not inspect.iscoroutinefunction(endpoint)
            or not (isinstance(returns, type) and issubclass(returns, Response))):
        return None
    subs = [_sub_call(d) for d in dependant.dependencies]
    if any(s is None for s in subs):
        return None
    return _Plan(endpoint, tuple(s for s in subs if s is not None), names,
                 tuple((f.name, f) for f in dependant.path_params),
                 query if isinstance(query, tuple) else None, overrides)


def _query_values(query: Any, fields: dict[str, bool]) -> dict[str, Any] | None:
    """The query model's input as FastAPI builds it, or None when FastAPI must decide
    (a name the model lacks: extra, a repeated scalar)."""
    values: dict[str, Any] = {}
    for key, value in query.multi_items():
        sequence = fields.get(key)
        if sequence is None:
            return None
        if sequence:
            values.setdefault(key, []).append(value)
        elif key in values:
            return None
        else:
            values[key] = value
    return values


async def _solve(call: _Call, request: Request, cache: dict[Any, Any]) -> Any:
    if call.call in cache:  # FastAPI's use_cache: one call per request
        return cache[call.call]
    kwargs: dict[str, Any] = {name: request for name in call.request_names}
    for sub in call.subs:
        value = await _solve(sub, request, cache)
        if sub.name is not None:
            kwargs[sub.name] = value
    cache[call.call] = result = await call.call(**kwargs)
    return result


def fast_handler(plan: _Plan, full: Callable[[Request], Coroutine[Any, Any, Response]]
                 ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The route's handler: the plan where it covers the request, else ``full``."""

    async def handler(request: Request) -> Response:
        if plan.overrides is not None and getattr(plan.overrides, "dependency_overrides", None):
            return await full(request)
        values: dict[str, Any] = {}
        params = request.path_params
        for name, field in plan.path:
            value, errors = field.validate(params.get(name), values, loc=("path", name))
            if errors:
                return await full(request)
            values[name] = value
        if plan.query is not None:
            name, field, fields = plan.query
            raw = _query_values(request.query_params, fields)
            if raw is None:
                return await full(request)
            value, errors = field.validate(raw, {}, loc=("query",))
            if errors:
                return await full(request)
            values[name] = value
        cache: dict[Any, Any] = {}
        for sub in plan.subs:
            solved = await _solve(sub, request, cache)
            if sub.name is not None:
                values[sub.name] = solved
        for name in plan.request_names:
            values[name] = request
        response = await plan.endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{plan.endpoint.__name__} must answer a Response")
        return response

    return handler


class FastReadRoute(APIRoute):
    """An ``APIRoute`` answering its ordinary requests through a compiled plan (see the
    module docstring); use as ``APIRouter(route_class=FastReadRoute)``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        full = super().get_route_handler()
        # The route as included (its prefix's and includers' dependencies added), the one
        # FastAPI's own handler was just built for; without that hook, FastAPI's alone.
        context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
        if context_var is None:
            return full
        effective = context_var.get()
        route: Any = self
        if effective is not None and effective.original_route is self:
            route = effective
        if route.dependant is None:
            return full
        plan = plan_of(route.dependant, self.endpoint, route.dependency_overrides_provider)
        return full if plan is None else fast_handler(plan, full)
