"""The core: one folder per area (models, actions, queries, policies)."""
