"""Helpers with no domain knowledge: normalising, crypto, HTML, ids, clock, outbound HTTP."""
