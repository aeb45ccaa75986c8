"""The shipped catalog of common ASIC models (figures and sources in instance/asic_catalog.yaml)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, dict]:
    text = resources.files("optimizer.instance").joinpath("asic_catalog.yaml").read_text()
    return {row["name"]: row for row in yaml.safe_load(text)}
