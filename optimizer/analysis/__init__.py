"""Analyses built on many solves: sweeps, breakevens, tornado charts, the risk frontier and
progressive hedging. Each returns tables; the CLI prints and writes them."""
