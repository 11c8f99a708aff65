"""How sure we are that a mail's From address is its sender: Authentication-Results (RFC 8601).

Rapport does no DNS lookups of its own. It trusts the verdict of the mail server that received
the mail for the inbox, and only that server's: an Authentication-Results header counts only
when its authserv-id is one the inbox lists, and only the topmost such header (RFC 8601 section
5: the receiving server removes or renames headers that claim its own authserv-id, so anything
below it may have been written by the sender). A pass must also be aligned with the From domain,
in the relaxed sense of DMARC (RFC 7489 section 3.1): the same organisational domain, here read
as the same domain or a subdomain of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([a-z0-9_-]+)\s*=\s*([a-z]+)", re.IGNORECASE)
_PROPERTY = re.compile(r"([a-z0-9_-]+\.[a-z0-9_-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)


@dataclass(frozen=True)
class MethodResult:
    method: str  # dkim, spf, dmarc, ...
    result: str  # pass, fail, none, ...
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str
    results: tuple[MethodResult, ...]


def parse_header(value: str) -> AuthResults | None:
    """One Authentication-Results header value; None when it cannot be read."""
    text = value
    while _COMMENT.search(text):  # comments may nest: remove the innermost until none is left
        text = _COMMENT.sub(" ", text)
    parts = [part.strip() for part in text.split(";")]
    if not parts or not parts[0]:
        return None
    authserv_id = parts[0].split()[0].lower()
    results = []
    for part in parts[1:]:
        match = _RESULT.match(part)
        if match is None:
            continue
        properties = {name.lower(): raw.strip('"').lower() for name, raw in _PROPERTY.findall(part)}
        results.append(MethodResult(match.group(1).lower(), match.group(2).lower(), properties))
    return AuthResults(authserv_id, tuple(results))


def trusted_results(headers: Sequence[str], trusted_ids: Iterable[str]) -> AuthResults | None:
    """The topmost header written by one of the inbox's own receiving servers, if any."""
    trusted = {item.strip().lower() for item in trusted_ids if item.strip()}
    if not trusted:
        return None
    for value in headers:  # headers come in message order: topmost (most recent) first
        parsed = parse_header(value)
        if parsed is not None and parsed.authserv_id in trusted:
            return parsed
    return None


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2].strip().lower().rstrip(".")


def _aligned(domain: str, from_domain: str) -> bool:
    return bool(domain) and (from_domain == domain or from_domain.endswith("." + domain))


def _passes(result: MethodResult, from_domain: str) -> bool:
    if result.result != "pass":
        return False
    props = result.properties
    if result.method == "dmarc":
        return _aligned(_domain_of(props.get("header.from", from_domain)), from_domain)
    if result.method == "dkim":
        signer = props.get("header.d") or _domain_of(props.get("header.i", ""))
        return _aligned(signer, from_domain)
    if result.method == "spf":
        envelope = props.get("smtp.mailfrom") or props.get("smtp.helo", "")
        return _aligned(_domain_of(envelope), from_domain)
    return False


def sender_authenticated(
    headers: Sequence[str], *, from_address: str, trusted_ids: Iterable[str]
) -> bool:
    """True when the inbox's own receiving server saw an aligned DMARC, DKIM or SPF pass."""
    results = trusted_results(headers, trusted_ids)
    if results is None:
        return False
    from_domain = _domain_of(from_address)
    if any(r.method == "dmarc" and r.result == "fail" for r in results.results):
        return False
    return any(_passes(result, from_domain) for result in results.results)
