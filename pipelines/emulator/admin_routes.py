"""The emulator's own admin surface (`/_emulator/...`): outside Nymble's API, no API key."""

from __future__ import annotations

from functools import partial

from .api_routes import parse_json_body
from .app import EmulatorApp
from .messages import Request, Response, json_response
from .problems import ProblemError
from .settings import fault_config_from_mapping

__all__ = ["register_admin_routes"]


def get_stats(app: EmulatorApp, request: Request) -> Response:
    return json_response(200, app.stats_snapshot())


def post_reset(app: EmulatorApp, request: Request) -> Response:
    app.reset()
    return json_response(200, {"reset": True})


def get_faults(app: EmulatorApp, request: Request) -> Response:
    return json_response(200, app.injector.config.model_dump())


def post_faults(app: EmulatorApp, request: Request) -> Response:
    """Replace the fault config with the keys given (same keys as `--fault`)."""
    body = parse_json_body(request)
    if not isinstance(body, dict):
        raise ProblemError.of(400, {"$": ["The body must be a JSON object of fault settings."]})
    try:
        config = fault_config_from_mapping(body)
    except ValueError as exc:
        raise ProblemError.of(400, {"faults": [str(exc)]}) from None
    app.set_faults(config)
    return json_response(200, config.model_dump())


def post_invoices(app: EmulatorApp, request: Request) -> Response:
    """Seed invoices: `{"org": "org_demo", "invoices": [{"orderId": ..., ...}]}`; amounts are
    kept as sent (exact decimals, as an order's money)."""
    body = parse_json_body(request, exact=True)
    org = body.get("org") if isinstance(body, dict) else None
    invoices = body.get("invoices") if isinstance(body, dict) else None
    if not isinstance(org, str) or not isinstance(invoices, list):
        raise ProblemError.of(400, {"$": ['Expected {"org": "...", "invoices": [...]}.']})
    return json_response(201, {"data": app.invoices.seed(org, invoices)})


def register_admin_routes(app: EmulatorApp) -> None:
    add = app.router.add
    add("GET", "/_emulator/stats", partial(get_stats, app))
    add("POST", "/_emulator/reset", partial(post_reset, app))
    add("GET", "/_emulator/faults", partial(get_faults, app))
    add("POST", "/_emulator/faults", partial(post_faults, app))
    add("POST", "/_emulator/invoices", partial(post_invoices, app))
