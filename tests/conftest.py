"""Shared test plugins. Fixture modules live beside the tests and are listed here."""

pytest_plugins = ["ledger_contract"]
