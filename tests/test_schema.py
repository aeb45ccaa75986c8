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


def test_every_numeric_field_has_a_finite_range_stated_in_its_description():
    """Every number of the instance format has a lower and an upper bound in the JSON Schema, and
    the field's description states it (a value with no bound could make validation or compilation
    cost grow with the value, or overflow; see optimizer/instance/base.py)."""
    from optimizer.instance import Instance

    schema = Instance.model_json_schema()
    unbounded, undescribed = [], []
    for model, d in [("Instance", schema), *schema["$defs"].items()]:
        for field, prop in d.get("properties", {}).items():
            alts = [prop, *prop.get("anyOf", [])]
            alts += [a[k] for a in list(alts) for k in ("items", "additionalProperties") if isinstance(a.get(k), dict)]
            numbers = [a for a in alts if a.get("type") in ("number", "integer") and "enum" not in a and "const" not in a]
            for a in numbers:
                if not ({"minimum", "exclusiveMinimum"} & set(a) and {"maximum", "exclusiveMaximum"} & set(a)):
                    unbounded.append(f"{model}.{field}")
            if numbers and "range " not in prop.get("description", ""):
                undescribed.append(f"{model}.{field}")
    assert unbounded == [] and undescribed == []
    lease = schema["$defs"]["Lease"]["properties"]["term_months"]
    assert lease["maximum"] == 1200 and lease["description"].endswith("range (0, 1200]")
