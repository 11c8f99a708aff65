"""Fake provider servers that follow the providers' documents; they serve the sandbox and the tests."""
