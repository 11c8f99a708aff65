"""Accounts: the tenants."""
