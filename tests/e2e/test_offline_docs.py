"""``/docs`` and ``/redoc`` work with no internet: every script and stylesheet they load is
served by the hub itself, from the pinned ``fastapi-offline`` package."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import store_env
from tests.support.api import running_api


def test_docs_pages_load_only_assets_the_hub_serves(tmp_path: Path) -> None:
    with running_api(store_env("sqlite", tmp_path / "data")) as api:
        for page in ("/docs", "/redoc"):
            html = api.client.get(page)
            assert html.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
            assert assets, page
            for url in assets:
                assert url.startswith("/"), f"{page} loads {url} from elsewhere"
                served = api.client.get(url)
                assert served.status_code == 200, url
                assert len(served.content) > 1000, url
            assert "cdn" not in html.text.lower()
        assert api.client.get("/openapi.json").status_code == 200
