"""`python -m pipelines.emulator`: serve the emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys

from .server import serve_forever
from .settings import settings_from_options

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.emulator", description="Serve a local Nymble Commerce API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY=ORG",
        help="an API key and its organization (repeatable); default: one printed demo key",
    )
    parser.add_argument("--db", default=None, metavar="PATH", help="SQLite file (default: memory)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a fault setting, e.g. error_rate=0.1 or unknown_tiers=Gold,Platinum (repeatable)",
    )
    parser.add_argument("--max-bulk-items", type=int, default=None)
    return parser


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so `terminate()` closes the database cleanly


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_options(args.api_key, args.db, args.fault, args.max_bulk_items)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    serve_forever(settings, args.host, args.port, echo=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
