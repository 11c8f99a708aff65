"""Visitors: the website widget's live sessions, each a browser that holds a visitor token."""
