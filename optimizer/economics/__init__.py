"""The economics of an instance: the ledger vocabulary (cash-flow items) and the compiled
``Data`` holding every derived coefficient, computed once from the kernel."""

from optimizer.economics.data import ContractData, Data, LeaseData, compile_instance
from optimizer.economics.ledger import CAPEX_ITEMS, ITEMS, PORTFOLIO, TERMINAL_ITEMS

__all__ = ["CAPEX_ITEMS", "ITEMS", "PORTFOLIO", "TERMINAL_ITEMS", "ContractData", "Data", "LeaseData", "compile_instance"]
