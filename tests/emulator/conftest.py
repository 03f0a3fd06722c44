"""Fixtures: a real emulator on a free loopback port per test, and httpx clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pipelines.emulator import Emulator, EmulatorSettings

from .helpers import KEY_A, KEY_B, ORG_A, ORG_B


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with given settings fields; all are stopped after the test."""
    started: list[Emulator] = []

    def start(**fields: Any) -> Emulator:
        fields.setdefault("api_keys", {KEY_A: ORG_A, KEY_B: ORG_B})
        emulator = Emulator.start(EmulatorSettings(**fields))
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: Callable[..., Emulator]) -> Emulator:
    return start_emulator()


@pytest.fixture
def make_client(emulator: Emulator) -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(
        key: str | None = KEY_A, target: Emulator | None = None, **kwargs: Any
    ) -> httpx.Client:
        headers = {"x-api-key": key} if key else {}
        base = (target or emulator).base_url
        client = httpx.Client(base_url=base, headers=headers, timeout=10, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., httpx.Client]) -> httpx.Client:
    """A client authenticated as org_a."""
    return make_client(KEY_A)


@pytest.fixture
def admin(make_client: Callable[..., httpx.Client]) -> httpx.Client:
    """A client without an API key, for the /_emulator routes."""
    return make_client(None)
