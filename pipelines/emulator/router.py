"""A small method + path-template router; route templates are also the stats keys."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from .messages import Request, Response

__all__ = ["Handler", "Route", "Router"]

Handler = Callable[[Request], Response]
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM_RE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str]

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def is_write(self) -> bool:
        return self.method in _WRITE_METHODS


def _compile(template: str) -> re.Pattern[str]:
    parts, pos = [], 0
    for found in _PARAM_RE.finditer(template):
        parts += [re.escape(template[pos : found.start()]), f"(?P<{found[1]}>[^/]+)"]
        pos = found.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(parts) + "/?$")


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        self._routes.append(Route(method, template, handler, _compile(template)))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path parameters, whether the path exists under another method)."""
        other_method = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}, False
            other_method = True
        return None, {}, other_method
