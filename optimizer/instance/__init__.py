"""The planning instance: schema (frozen pydantic models), cross-field checks, time series,
the scenario generator, overrides and loading. ``from optimizer.instance import Instance``."""

from optimizer.instance.base import Bitcoin, Horizon, TerminalRule
from optimizer.instance.loading import load_instance, read_mapping
from optimizer.instance.messages import format_validation_error
from optimizer.instance.schema import (
    AcquisitionOption,
    AsicModel,
    Contract,
    Conversion,
    FixedContract,
    FixedContractDecision,
    FixedConversion,
    FixedDecision,
    FixedGridExpansion,
    FixedLease,
    FixedPurchase,
    FixedSiteEvent,
    Fleet,
    GridExpansion,
    Hall,
    IndexContract,
    Installed,
    Instance,
    Lease,
    OwnedGeneration,
    Policy,
    PurchaseOption,
    Risk,
    SaleOption,
    Scenario,
    Site,
    Treasury,
)
from optimizer.instance.series import Series

__all__ = [
    "AcquisitionOption", "AsicModel", "Bitcoin", "Contract", "Conversion", "FixedContract", "FixedContractDecision",
    "FixedConversion", "FixedDecision", "FixedGridExpansion", "FixedLease", "FixedPurchase", "FixedSiteEvent", "Fleet",
    "GridExpansion", "Hall", "Horizon", "IndexContract", "Installed", "Instance", "Lease", "OwnedGeneration", "Policy",
    "PurchaseOption", "Risk", "SaleOption", "Scenario", "Series", "Site", "TerminalRule", "Treasury",
    "format_validation_error", "load_instance", "read_mapping",
]
