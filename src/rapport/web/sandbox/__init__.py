"""The sandbox: plays the customer on every channel through fake provider servers (demo only)."""
