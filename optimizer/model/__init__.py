"""The allocation MILP (Pyomo): build, read back the plan, report its cash-flow lines."""

from optimizer.model.build import ModelOptions, build_model
from optimizer.model.common import MWH, UNITS, USD
from optimizer.model.extract import extract_plan, mip_start_values
from optimizer.model.objective import model_cashflows
from optimizer.model.params import update_params

__all__ = ["ModelOptions", "build_model", "extract_plan", "mip_start_values", "model_cashflows",
           "update_params", "USD", "MWH", "UNITS"]
