"""Safe downloads of photos by URL.

What is guaranteed:
- only ``http`` and ``https``;
- every address a host name resolves to must be public, unless the host (or the
  address) is listed in ``allowed_hosts``; the connection goes to the address
  that was checked, so a second DNS answer cannot point it elsewhere;
- redirects are followed by hand, each hop checked like the first;
- the body is capped at ``max_bytes`` and the whole download at
  ``total_timeout`` seconds, however slowly the bytes arrive.

Failures are :class:`PermanentError` (retrying cannot help) or
:class:`TransientError` (it might).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from photos.errors import PermanentError, TransientError

USER_AGENT = "photo-processor/1.0"
_CHUNK = 64 * 1024


class BlockedAddressError(PermanentError):
    """The URL points at an address downloads may not reach."""


@dataclass(frozen=True)
class FetchPolicy:
    allowed_hosts: frozenset[str] = frozenset()
    max_bytes: int = 50 * 1024 * 1024
    connect_timeout: float = 5.0
    total_timeout: float = 30.0
    max_redirects: int = 5


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def fetch(url: str, policy: FetchPolicy) -> bytes:
    """The body of ``url``, following at most ``policy.max_redirects`` redirects."""
    deadline = time.monotonic() + policy.total_timeout
    for _ in range(policy.max_redirects + 1):
        location = _fetch_once(url, policy, deadline)
        if isinstance(location, bytes):
            return location
        url = location
    raise PermanentError(f"more than {policy.max_redirects} redirects")


def check_url(url: str, policy: FetchPolicy) -> tuple[str, str, int, IPAddress]:
    """Scheme, host, port and the checked address to connect to, or an error."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PermanentError(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise PermanentError(f"only http and https URLs can be downloaded, not {scheme or 'none'!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise PermanentError("URL has no host")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise TransientError(f"could not resolve {host}: {exc.strerror}") from None
        raise PermanentError(f"could not resolve {host}: {exc.strerror}") from None
    except UnicodeError:
        raise PermanentError(f"invalid host name {host!r}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise PermanentError(f"{host} has no address")
    host_allowed = host in policy.allowed_hosts
    for address in addresses:
        if not (host_allowed or str(address) in policy.allowed_hosts or _is_public(address)):
            # Refuse if any answer is private: an attacker's name may mix them.
            raise BlockedAddressError(f"{host} resolves to {address}, which is not a public address")
    return scheme, host, port, addresses[0]


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None and not _is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


# IPv6 forms that carry an IPv4 address a gateway or the kernel may deliver to:
# IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), 6to4 (2002::/16)
# and NAT64 (64:ff9b::/96). Python calls the last three "global" whatever they
# embed, so 64:ff9b::a00:1 would reach 10.0.0.1 through a NAT64 gateway.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215, local use only
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _fetch_once(url: str, policy: FetchPolicy, deadline: float) -> bytes | str:
    """The body, or the URL to go to next when the answer is a redirect."""
    scheme, host, port, address = check_url(url, policy)
    too_long = TransientError(f"download took longer than {policy.total_timeout:g}s")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise too_long
    sock = _connect(host, address, port, min(policy.connect_timeout, remaining))
    # Socket timeouts bound each read, not their sum: a host sending its status
    # line or headers a byte at a time would never time out. The cutoff shuts
    # the socket down when the deadline passes, whatever is being read.
    cutoff = _Cutoff(sock, deadline - time.monotonic())
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        if scheme == "https":
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
        response = _get(sock, url, host, port, default_port=443 if scheme == "https" else 80)
        return _body_or_next(url, response, policy, deadline, cutoff)
    except ssl.SSLCertVerificationError as exc:
        raise PermanentError(f"TLS error talking to {host}: {exc.verify_message or exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        if cutoff.fired or isinstance(exc, TimeoutError):
            raise too_long from None
        raise TransientError(f"download from {host} failed: {_describe(exc)}") from None
    finally:
        cutoff.cancel()
        sock.close()


def _connect(host: str, address: IPAddress, port: int, timeout: float) -> socket.socket:
    """A connection to the address that was checked, never to a second answer for the name."""
    try:
        return socket.create_connection((str(address), port), timeout=timeout)
    except TimeoutError:
        raise TransientError(f"could not connect to {host}: timed out") from None
    except OSError as exc:
        raise TransientError(f"could not connect to {host}: {exc.strerror or exc}") from None


def _get(
    sock: socket.socket, url: str, host: str, port: int, *, default_port: int
) -> http.client.HTTPResponse:
    """Sends the GET of ``url`` on ``sock``; the response, headers read."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default_port else f"{bracketed}:{port}"
    connection = http.client.HTTPConnection(host, port)
    connection.sock = sock
    connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    for name, value in (("Host", host_header), ("User-Agent", USER_AGENT), ("Accept", "image/*")):
        connection.putheader(name, value)
    connection.putheader("Connection", "close")
    connection.endheaders()
    return connection.getresponse()


def _body_or_next(
    url: str, response: http.client.HTTPResponse, policy: FetchPolicy, deadline: float, cutoff: _Cutoff
) -> bytes | str:
    """The body of a 200, the URL a redirect names, or the error the status means."""
    if response.status in (301, 302, 303, 307, 308):
        location = response.getheader("Location")
        if not location:
            raise PermanentError(f"HTTP {response.status} without a Location")
        return urljoin(url, location)
    if response.status == 429 or response.status >= 500:
        raise TransientError(f"the photo host answered HTTP {response.status}")
    if response.status != 200:
        raise PermanentError(f"the photo host answered HTTP {response.status}")
    return _read_capped(response, policy, deadline, cutoff)


def _read_capped(
    response: http.client.HTTPResponse, policy: FetchPolicy, deadline: float, cutoff: _Cutoff
) -> bytes:
    too_long = TransientError(f"download took longer than {policy.total_timeout:g}s")
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
        raise PermanentError(f"photo is {int(declared)} bytes, more than the limit of {policy.max_bytes}")
    body = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise too_long
        # read1 returns as soon as some bytes arrive, so the size cap and the
        # deadline are checked however the host paces its bytes.
        chunk = response.read1(_CHUNK)
        if not chunk:
            break
        body += chunk
        if len(body) > policy.max_bytes:
            raise PermanentError(f"photo is larger than the limit of {policy.max_bytes} bytes")
    if cutoff.fired:
        raise too_long
    if response.length:  # what the Content-Length still promised when the host hung up
        raise TransientError(
            f"the photo host's answer ended after {len(body)} of {len(body) + response.length} bytes"
        )
    return bytes(body)


class _Cutoff:
    """Shuts a socket down after ``seconds``, unless cancelled first."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._fd = sock.fileno()
        self._family = sock.family
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            # A duplicate of the descriptor: the TLS wrapper may own the original
            # object by now, the connection underneath is the same.
            with (
                contextlib.suppress(OSError),
                socket.fromfd(self._fd, self._family, socket.SOCK_STREAM) as dup,
            ):
                dup.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        """Must be called before the socket is closed (its descriptor reused)."""
        with self._lock:
            self._done = True
        self._timer.cancel()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the host closed the connection without answering"
    if isinstance(exc, http.client.IncompleteRead):
        return "the answer ended early"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
