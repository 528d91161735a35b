"""Erasure and export over HTTP: the privacy role (and admin) only, the error shape, the zip."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.conftest import store_env
from tests.support.api import running_api
from touchstream.privacy_routes import privacy_routes

CANARY = "Hp4canaryZw"


def test_export_then_erase_over_http_with_roles_and_duplicates(tmp_path: Path) -> None:
    with running_api(store_env("sqlite", tmp_path / "data"), routers=(privacy_routes,)) as api:
        created = api.post("/commands/register-customer", {
            "name": f"Ida {CANARY}", "contact_points": [{"kind": "email", "value": "ida@example.com"}],
        })
        assert created.status_code == 201, created.text
        cid = created.json()["customer_id"]

        for role in ("agent", "auditor", "analyst", "partner"):
            assert api.client.get(f"/customers/{cid}/export", headers=api.auth(role)).status_code == 403
            assert api.post("/commands/erase-customer", {"customer_id": cid, "reason": "x"},
                            role=role).status_code == 403

        got = api.client.get(f"/customers/{cid}/export", headers=api.auth("privacy"))
        assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
            assert CANARY in zf.read("events.jsonl").decode()
            assert json.loads(zf.read("manifest.json"))["customer_id"] == cid

        erased = api.post("/commands/erase-customer", {"customer_id": cid, "reason": "DSR-9"},
                          role="privacy")
        assert erased.status_code == 201, erased.text
        assert erased.json()["erased"] == [cid] and erased.json()["duplicate"] is False
        again = api.post("/commands/erase-customer", {"customer_id": cid, "reason": "DSR-9"},
                         role="admin")
        assert again.status_code == 200 and again.json()["duplicate"] is True

        unknown = api.post("/commands/erase-customer",
                           {"customer_id": "00000000-0000-0000-0000-000000000009", "reason": "x"},
                           role="privacy")
        assert unknown.status_code == 404
        bad = api.post("/commands/erase-customer", {"customer_id": cid, "reason": ""},
                       role="privacy")
        assert bad.status_code == 422

        after = api.client.get(f"/customers/{cid}/export", headers=api.auth("privacy"))
        with zipfile.ZipFile(io.BytesIO(after.content)) as zf:
            assert CANARY not in zf.read("events.jsonl").decode()
