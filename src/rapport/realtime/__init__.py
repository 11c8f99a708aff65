"""Realtime: events pushed to connected browsers, on one node or across many."""
