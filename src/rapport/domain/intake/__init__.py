"""Intake: where polled sources (IMAP mailboxes) were read up to, and who reads them now."""
