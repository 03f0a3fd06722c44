"""§1.2 credentials, §5.1 401 shape, and §5.6 organization isolation."""

from __future__ import annotations

import httpx
import pytest

from pipelines.emulator import Emulator

from .helpers import KEY_A, KEY_B, bulk, product


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY_A}],
    ids=["missing", "wrong-x-api-key", "wrong-bearer", "key-without-bearer-scheme"],
)
def test_bad_credentials_get_401_problem_details(emulator: Emulator, headers: dict) -> None:
    response = httpx.get(f"{emulator.base_url}/api/products", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert body["type"].endswith("15.5.2")


@pytest.mark.parametrize(
    "headers",
    [{"x-api-key": KEY_A}, {"Authorization": f"Bearer {KEY_A}"}, {"X-API-KEY": KEY_A}],
    ids=["x-api-key", "bearer", "header-case"],
)
def test_valid_key_in_either_header_is_accepted(emulator: Emulator, headers: dict) -> None:
    response = httpx.get(f"{emulator.base_url}/api/products", headers=headers)
    assert response.status_code == 200


def test_unknown_api_route_with_a_key_is_404(client: httpx.Client) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"


def test_another_orgs_resources_are_404_and_skus_are_per_org(make_client) -> None:
    org_a, org_b = make_client(KEY_A), make_client(KEY_B)
    bulk(org_a, [product(1)])
    assert org_a.get("/api/products/SKU-001").status_code == 200
    assert org_b.get("/api/products/SKU-001").status_code == 404
    assert org_b.get("/api/products").json()["totalRecords"] == 0
    # The same SKU and externalId in another org is a different product, not a conflict.
    summary = bulk(org_b, [product(1)])
    assert summary["createdCount"] == 1


def test_demo_key_is_created_when_none_is_configured(start_emulator) -> None:
    emulator = start_emulator(api_keys={})
    ((key, org),) = emulator.api_keys.items()
    assert key.startswith("demo_") and org == "org_demo"
    response = httpx.get(f"{emulator.base_url}/api/products", headers={"x-api-key": key})
    assert response.status_code == 200
