"""Channel adapters: one folder per channel, registered in `registry.py`."""
