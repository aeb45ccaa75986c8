"""`optimizer schema` prints a valid JSON Schema of the instance format."""

from __future__ import annotations

import json

from optimizer.cli import main

# The sections of DESIGN section 3 as the instance spells them.
SECTIONS = {"horizon", "bitcoin", "scenarios", "sites", "fleet", "contracts", "leases", "treasury", "policy"}


def test_schema_is_json_with_every_section(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object"
    assert SECTIONS <= set(schema["properties"])
    assert {"horizon", "bitcoin", "scenarios", "sites", "fleet"} <= set(schema["required"])
    # unknown fields are forbidden, so editors flag typos
    assert schema.get("additionalProperties") is False
    site = schema["$defs"]["Site"]
    assert site["additionalProperties"] is False
    assert {"grid_interconnect_mw", "halls", "conversion"} <= set(site["properties"])


def test_schema_knows_contract_kinds(capsys):
    main(["schema"])
    schema = json.loads(capsys.readouterr().out)
    text = json.dumps(schema["properties"]["contracts"])
    for kind in ("FixedContract", "IndexContract", "OwnedGeneration"):
        assert kind in text
