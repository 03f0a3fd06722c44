"""A file database (`--db`) keeps the data across a restart."""

from __future__ import annotations

import httpx

from pipelines.emulator import Emulator, EmulatorSettings

from .helpers import KEY_A, ORG_A, bulk, product


def test_data_survives_a_restart(tmp_path) -> None:
    settings = EmulatorSettings(api_keys={KEY_A: ORG_A}, db_path=str(tmp_path / "emu.db"))
    with (
        Emulator.start(settings) as first,
        httpx.Client(base_url=first.base_url, headers={"x-api-key": KEY_A}) as client,
    ):
        pid = bulk(client, [product(1)])["results"][0]["productId"]
        client.put(
            "/api/customers",
            json={
                "customerNumber": "C1",
                "companyName": "C",
                "companyEmail": "c@c.c",
                "pricing": "Retail",
            },
        )
    with (
        Emulator.start(settings) as second,
        httpx.Client(base_url=second.base_url, headers={"x-api-key": KEY_A}) as client,
    ):
        assert client.get("/api/products/SKU-001").json()["productId"] == pid
        assert client.get("/api/customers/C1").status_code == 200
        assert second.stats()["records"][ORG_A]["products"] == 1
        # Matching still works against the persisted rows.
        assert bulk(client, [product(1, name="again")])["updatedCount"] == 1
