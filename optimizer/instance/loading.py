"""Reading an instance file: YAML/JSON parsing (``instance.parsing``), validation, every user
error as one line."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from optimizer.errors import InputError
from optimizer.instance.messages import format_validation_error
from optimizer.instance.parsing import read_mapping
from optimizer.instance.schema import Instance

__all__ = ["load_instance", "read_mapping"]


def load_instance(path: str | Path, data_dir: str | Path | None = None) -> Instance:
    """Load and validate an instance file; every user error becomes a one-line InputError.

    CSV series are read relative to the file's folder and must lie inside the data folder:
    ``data_dir`` when given, else the file's folder (``Instance.from_dict``)."""
    path = Path(path)
    data = read_mapping(path)
    try:
        return Instance.from_dict(data, base_dir=path.parent, data_dir=data_dir)
    except ValidationError as e:
        raise InputError(f"{path}: {format_validation_error(e, data, Instance)}") from None
