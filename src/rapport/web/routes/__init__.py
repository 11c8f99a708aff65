"""Routes, one module per area of the UI or API."""
