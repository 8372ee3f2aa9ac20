"""The URL and address rules of safe downloads (``photos.fetch.check_url``).

Names are resolved by the system's own resolver (``getaddrinfo``), offline: the
hosts below are numeric in one spelling or another, or names from /etc/hosts
(``localhost``). No name in public DNS can be relied on to resolve to 10.x on a
machine without network, so the "name that resolves to 10.x" cases use the
spellings that ``getaddrinfo`` itself turns into 10.0.0.1 (``10.1``,
``167772161``, ``0x0a000001``, ``012.0.0.1``): the address check sees only what
the resolver answered, exactly as it would for a DNS name. The listener tests in
tests/integration/test_fetch_hosts.py show that refused URLs are never connected to.
"""

from __future__ import annotations

import ipaddress

import pytest

from photos.errors import PermanentError
from photos.fetch import BlockedAddressError, FetchPolicy, check_url

NOTHING_ALLOWED = FetchPolicy()


@pytest.mark.parametrize(
    "url",
    [
        # loopback, in the spellings inet_aton and URL parsers accept
        "http://127.0.0.1/p.jpg",
        "http://127.1/p.jpg",
        "http://0x7f000001/p.jpg",
        "http://2130706433/p.jpg",
        "http://017700000001/p.jpg",
        "http://0177.0.0.1/p.jpg",
        "http://localhost/p.jpg",
        "http://LocalHost/p.jpg",
        "http://[::1]/p.jpg",
        "http://[0:0:0:0:0:0:0:1]/p.jpg",
        # IPv4 hidden in IPv6
        "http://[::ffff:127.0.0.1]/p.jpg",
        "http://[::ffff:7f00:1]/p.jpg",
        "http://[::127.0.0.1]/p.jpg",
        "http://[2002:7f00:1::1]/p.jpg",
        "http://[64:ff9b::7f00:1]/p.jpg",
        "http://[64:ff9b::a00:1]/p.jpg",
        "http://[64:ff9b:1::a00:1]/p.jpg",
        # cloud metadata, link-local
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/p.jpg",
        # private networks, and names the resolver turns into 10.0.0.1
        "http://10.0.0.1/p.jpg",
        "http://10.1/p.jpg",
        "http://167772161/p.jpg",
        "http://0x0a000001/p.jpg",
        "http://012.0.0.1/p.jpg",
        "http://172.16.5.4/p.jpg",
        "http://192.168.1.1/p.jpg",
        "http://100.64.0.1/p.jpg",
        "http://[fd00::2]/p.jpg",
        # this machine's own address, unspecified, broadcast, multicast, reserved
        "http://192.0.2.2/p.jpg",
        "http://0.0.0.0/p.jpg",
        "http://0/p.jpg",
        "http://[::]/p.jpg",
        "http://255.255.255.255/p.jpg",
        "http://224.0.0.1/p.jpg",
        "http://240.0.0.1/p.jpg",
        # tricks with the authority
        "http://8.8.8.8@127.0.0.1/p.jpg",
        "http://127.0.0.1#@8.8.8.8/p.jpg",
        "https://127.0.0.1:443/p.jpg",
    ],
)
def test_private_loopback_and_reserved_addresses_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddressError, match="not a public address"):
        check_url(url, NOTHING_ALLOWED)


@pytest.mark.parametrize(
    ("url", "address", "port"),
    [
        ("http://8.8.8.8/p.jpg", "8.8.8.8", 80),
        ("https://1.1.1.1/p.jpg", "1.1.1.1", 443),
        ("HTTP://8.8.4.4:8080/p.jpg", "8.8.4.4", 8080),
        ("http://[2606:4700:4700::1111]/p.jpg", "2606:4700:4700::1111", 80),
        ("http://[::ffff:8.8.8.8]/p.jpg", "::ffff:8.8.8.8", 80),
    ],
)
def test_public_addresses_pass_and_the_checked_address_is_the_one_to_connect_to(
    url: str, address: str, port: int
) -> None:
    scheme, _host, checked_port, checked = check_url(url, NOTHING_ALLOWED)
    assert scheme in ("http", "https")
    assert (checked, checked_port) == (ipaddress.ip_address(address), port)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://8.8.8.8/p.jpg",
        "gopher://8.8.8.8:70/_x",
        "data:image/jpeg;base64,/9j/",
        "javascript:alert(1)",
        "//8.8.8.8/p.jpg",
        "p.jpg",
    ],
)
def test_only_http_and_https_are_downloaded(url: str) -> None:
    with pytest.raises(PermanentError, match="only http and https"):
        check_url(url, NOTHING_ALLOWED)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http:///p.jpg", "no host"),
        ("http://8.8.8.8:99999/p.jpg", "malformed URL"),
        ("http://8.8.8.8:port/p.jpg", "malformed URL"),
        ("http://[::1/p.jpg", "malformed URL"),
        ("http://no-such-host.invalid/p.jpg", "could not resolve no-such-host.invalid"),
    ],
)
def test_malformed_urls_fail_permanently_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(PermanentError, match=message) as raised:
        check_url(url, NOTHING_ALLOWED)
    assert not isinstance(raised.value, BlockedAddressError)


def test_an_allowed_host_name_may_reach_a_loopback_address() -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({"localhost"}))
    assert check_url("http://localhost:3000/samples/a.jpg", policy)[3].is_loopback
    # The allowance is for that name only: other spellings of the address are not it.
    for url in ("http://127.0.0.1:3000/a.jpg", "http://[::1]:3000/a.jpg", "http://vm:3000/a.jpg"):
        with pytest.raises(BlockedAddressError):
            check_url(url, policy)


def test_an_allowed_address_is_allowed_in_every_spelling_but_nothing_else_is() -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}))
    for url in ("http://127.0.0.1/a.jpg", "http://0x7f000001/a.jpg", "http://localhost/a.jpg"):
        assert str(check_url(url, policy)[3]) == "127.0.0.1"
    for url in ("http://127.0.0.2/a.jpg", "http://[::1]/a.jpg", "http://169.254.169.254/"):
        with pytest.raises(BlockedAddressError):
            check_url(url, policy)
