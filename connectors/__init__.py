"""Connectors: one module per platform, behind the contract in ``bottender.connectors.base``."""
