"""Rapport: an open-source omnichannel contact center."""

__version__ = "0.1.0"
