"""Contacts: one profile per customer, with every identity they are known by."""
