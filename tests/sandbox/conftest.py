import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def provider_specs() -> Path:
    """Where the official provider specs live: HUB_PROVIDER_SPECS, by default ../shared/providers."""
    path = Path(os.environ.get("HUB_PROVIDER_SPECS", REPO.parent / "shared" / "providers"))
    if not path.is_dir():
        pytest.fail(f"provider specs not found at {path} (set HUB_PROVIDER_SPECS)")
    return path
