"""Agents: users, teams, API tokens."""
