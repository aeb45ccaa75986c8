"""The allocation MILP (Pyomo): build, read back the plan, report its cash-flow lines."""

from .build import ModelOptions, build_model
from .common import MWH, UNITS, USD
from .extract import extract_plan, mip_start_values
from .objective import model_cashflows
from .params import update_params

__all__ = ["ModelOptions", "build_model", "extract_plan", "mip_start_values", "model_cashflows",
           "update_params", "USD", "MWH", "UNITS"]
