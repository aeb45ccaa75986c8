"""Reading an instance file: YAML/JSON parsing, validation, every user error as one line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from optimizer.errors import InputError
from optimizer.instance.messages import format_validation_error
from optimizer.instance.schema import Instance


def read_mapping(path: str | Path, what: str = "instance") -> dict:
    """Parse a YAML or JSON file (by extension) into a dict, or raise a one-line InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a YAML or JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
            problem = getattr(e, "problem", None) or str(e)
            raise InputError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the {what} must be a mapping of sections at the top level, got {type(data).__name__}")
    return data


def load_instance(path: str | Path):
    """Load and validate an instance file; every user error becomes a one-line InputError."""
    path = Path(path)
    data = read_mapping(path)
    try:
        return Instance.from_dict(data, base_dir=path.parent)
    except ValidationError as e:
        raise InputError(f"{path}: {format_validation_error(e, data, Instance)}") from None
