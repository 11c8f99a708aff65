import httpx
import pytest

from rapport.lib.http import BlockedTarget, GuardedTransport, build_client, retry_after_seconds


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://localhost:9/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "file:///etc/passwd",
    ],
)
async def test_the_outbound_client_refuses_internal_targets(url):
    async with build_client(allow_private=False) as client:
        with pytest.raises((BlockedTarget, httpx.UnsupportedProtocol)):
            await client.get(url)


async def test_redirects_to_internal_hosts_are_refused_at_every_hop():
    # A public-looking first hop that redirects inward is checked again after the redirect.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"})

    transport = GuardedTransport(allow_private=False, inner=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        with pytest.raises(BlockedTarget):
            await client.get("http://93.184.216.34/")


def test_retry_after_is_read_in_seconds():
    response = httpx.Response(429, headers={"Retry-After": "7"})
    assert retry_after_seconds(response, default=1) == 7
    assert retry_after_seconds(httpx.Response(503), default=2) == 2
