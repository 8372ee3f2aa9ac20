"""Safe downloads against real, hostile HTTP servers on this machine.

Refused addresses are checked with a listener: a plain TCP server on the very
address and port the URL names, which records every connection it accepts, so
"refused" means "never connected to", not just "an error came back". Addresses
that cannot be listened on here (169.254.169.254, the 10.x spellings) have no
listener; for them tests/unit/test_fetch.py shows the check happens on the
resolver's answer before any connection is attempted.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from photos.errors import PermanentError, TransientError
from photos.fetch import BlockedAddressError, FetchPolicy, fetch
from tests.support import images
from tests.support.photo_host import Behaviour, PhotoHost, drip, endless, redirect, serve_bytes, status

JPEG = images.jpeg(64, 48)
LOCAL = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), total_timeout=5.0)


class Listener:
    """A TCP server that only counts the connections made to it."""

    def __init__(self, address: str, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener("127.0.0.1")
    yield server
    server.close()


def can_listen(address: str, family: socket.AddressFamily) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
    except OSError:
        return False
    return True


def machine_addresses() -> list[tuple[str, socket.AddressFamily]]:
    """This machine's own non-loopback addresses (private here), to listen on."""
    found: list[tuple[str, socket.AddressFamily]] = []
    for info in (
        socket.getaddrinfo(socket.gethostname(), None)
        + socket.getaddrinfo("fd00::2", None)
        + socket.getaddrinfo("192.0.2.2", None)
    ):
        address = str(info[4][0])
        family = socket.AddressFamily(info[0])
        if (address, family) not in found and not address.startswith("127.") and can_listen(address, family):
            found.append((address, family))
    return found


# --- addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "0x7f000001", "2130706433", "127.1", "localhost", "vm", "0.0.0.0"],
)
def test_loopback_in_any_spelling_is_never_connected_to(listener: Listener, host: str) -> None:
    with pytest.raises(BlockedAddressError, match="not a public address"):
        fetch(f"http://{host}:{listener.port}/photo.jpg", FetchPolicy())
    assert listener.accepted == 0


def test_ipv6_loopback_is_never_connected_to() -> None:
    if not can_listen("::1", socket.AF_INET6):
        pytest.fail("this machine has no IPv6 loopback to listen on")
    server = Listener("::1", socket.AF_INET6)
    try:
        for host in ("[::1]", "[::ffff:127.0.0.1]"):
            with pytest.raises(BlockedAddressError):
                fetch(f"http://{host}:{server.port}/photo.jpg", FetchPolicy())
        assert server.accepted == 0
    finally:
        server.close()


def test_this_machines_private_addresses_are_never_connected_to() -> None:
    addresses = machine_addresses()
    assert addresses, "no private address of this machine to listen on"
    for address, family in addresses:
        server = Listener(address, family)
        try:
            host = f"[{address}]" if family == socket.AF_INET6 else address
            with pytest.raises(BlockedAddressError):
                fetch(f"http://{host}:{server.port}/photo.jpg", FetchPolicy())
            assert server.accepted == 0, address
        finally:
            server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.1/photo.jpg",
        "http://167772161/photo.jpg",
        "http://012.0.0.1/photo.jpg",
    ],
)
def test_metadata_and_private_network_addresses_are_refused_before_connecting(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(BlockedAddressError):
        fetch(url, FetchPolicy(connect_timeout=5.0))
    # No connection was attempted: an unroutable address would take the connect timeout.
    assert time.monotonic() - started < 1.0


def test_an_allowed_host_is_downloaded_from_the_checked_address(photo_host: PhotoHost) -> None:
    url = photo_host.add("a.jpg", serve_bytes(JPEG))
    assert fetch(url, LOCAL) == JPEG
    by_name = FetchPolicy(allowed_hosts=frozenset({"localhost"}))
    assert fetch(url.replace("127.0.0.1", "localhost"), by_name) == JPEG
    assert photo_host.requests == ["/a.jpg", "/a.jpg"]


# Run in a network and mount namespace of its own (unshare, as root or with user
# namespaces): there 10.9.8.7 is on the loopback device, so it can be listened
# on, and /etc/hosts names it private.example; the machine itself is untouched.
IN_NAMESPACE = """
set -e
ip link set lo up
ip addr add 10.9.8.7/32 dev lo
echo '10.9.8.7 private.example' > "$HOSTS"
mount --bind "$HOSTS" /etc/hosts
exec "$PYTHON" -c "$CHILD"
"""

CHILD = """
import json
from photos.fetch import FetchPolicy, fetch
from tests.integration.test_fetch_hosts import Listener

server = Listener("10.9.8.7")
outcome = {}
for name, policy in (("default", FetchPolicy()), ("allowed", FetchPolicy(allowed_hosts=frozenset({"private.example"}), total_timeout=5.0))):
    before = server.accepted
    try:
        fetch(f"http://private.example:{server.port}/photo.jpg", policy)
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    outcome[name] = {"error": error, "connections": server.accepted - before}
server.close()
print(json.dumps(outcome))
"""


def test_a_name_that_resolves_to_a_private_address_is_never_connected_to(tmp_path: Path) -> None:
    env = {**os.environ, "HOSTS": str(tmp_path / "hosts"), "PYTHON": sys.executable, "CHILD": CHILD}
    done = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "--net", "sh", "-c", IN_NAMESPACE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["default"] == {
        "error": "BlockedAddressError: private.example resolves to 10.9.8.7, which is not a public address",
        "connections": 0,
    }
    # The listener is reachable: allowed by name, the same URL is connected to.
    assert outcome["allowed"]["connections"] == 1, outcome


# --- redirects -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://0x7f000001:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/x",
    ],
)
def test_a_redirect_to_loopback_is_refused_without_connecting(
    photo_host: PhotoHost, listener: Listener, target: str
) -> None:
    # The photo host is reached by name (allowed); the address it redirects to is not allowed.
    url = photo_host.add("r", redirect(target.format(port=listener.port))).replace("127.0.0.1", "localhost")
    with pytest.raises(BlockedAddressError):
        fetch(url, FetchPolicy(allowed_hosts=frozenset({"localhost"})))
    assert photo_host.requests == ["/r"]
    assert listener.accepted == 0


def test_redirects_are_followed_relative_and_absolute_each_hop_checked(photo_host: PhotoHost) -> None:
    photo_host.add("final.jpg", serve_bytes(JPEG))
    photo_host.add("second", redirect(photo_host.url("final.jpg"), 301))
    url = photo_host.add("first", redirect("/second", 307))
    assert fetch(url, LOCAL) == JPEG
    assert photo_host.requests == ["/first", "/second", "/final.jpg"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://127.0.0.1/x", "only http and https"),
        ("/loop", "more than 5 redirects"),
        ("", "without a Location"),
    ],
)
def test_bad_redirects_fail_permanently(photo_host: PhotoHost, location: str, reason: str) -> None:
    url = photo_host.add("loop", redirect(location))
    with pytest.raises(PermanentError, match=reason):
        fetch(url, LOCAL)


# --- hostile answers ---------------------------------------------------------------


def test_a_stalling_host_fails_by_the_total_deadline(photo_host: PhotoHost) -> None:
    """Headers at once, then a byte every second: each read succeeds, the
    download as a whole must not."""
    url = photo_host.add("slow.jpg", drip(1.0))
    policy = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), total_timeout=2.5)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"longer than 2\.5s"):
        fetch(url, policy)
    assert 2.5 <= time.monotonic() - started < 4.0


def drip_headers(interval: float) -> Behaviour:
    """A status line and then header lines, a byte every ``interval`` seconds, for ever."""

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        try:
            for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10_000:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(interval)
        except OSError:
            pass

    return behaviour


def test_a_host_dripping_its_headers_fails_by_the_total_deadline(photo_host: PhotoHost) -> None:
    url = photo_host.add("slow-headers.jpg", drip_headers(0.2))
    policy = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), total_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(TransientError, match="longer than 2s"):
        fetch(url, policy)
    assert time.monotonic() - started < 3.0


def silent() -> Behaviour:
    """Accepts the request and never answers."""

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(30)

    return behaviour


def test_a_host_that_never_answers_fails_by_the_total_deadline(photo_host: PhotoHost) -> None:
    url = photo_host.add("silent.jpg", silent())
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"longer than 1\.5s"):
        fetch(url, FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), total_timeout=1.5))
    assert time.monotonic() - started < 2.5


def test_an_endless_body_is_cut_at_the_size_cap(photo_host: PhotoHost) -> None:
    url = photo_host.add("endless.jpg", endless())
    policy = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=1_000_000)
    with pytest.raises(PermanentError, match="larger than the limit of 1000000 bytes"):
        fetch(url, policy)


def test_a_declared_length_over_the_cap_is_refused_before_reading(photo_host: PhotoHost) -> None:
    url = photo_host.add("big.jpg", serve_bytes(b"\xff" * 2_000_000))
    policy = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=1_000_000)
    with pytest.raises(PermanentError, match="2000000 bytes, more than the limit of 1000000"):
        fetch(url, policy)


def short_body(data: bytes, declared: int) -> Behaviour:
    """Declares ``declared`` bytes, sends ``data`` and hangs up."""

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
        handler.close_connection = True

    return behaviour


def test_a_body_cut_short_is_a_transient_failure_not_a_truncated_photo(photo_host: PhotoHost) -> None:
    url = photo_host.add("cut.jpg", short_body(JPEG[:500], len(JPEG)))
    with pytest.raises(TransientError, match="ended after 500 of"):
        fetch(url, LOCAL)


def chunked(data: bytes) -> Behaviour:
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for i in range(0, len(data), 1000):
            part = data[i : i + 1000]
            handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    return behaviour


def test_a_chunked_body_is_read_whole(photo_host: PhotoHost) -> None:
    url = photo_host.add("chunked.jpg", chunked(JPEG))
    assert fetch(url, LOCAL) == JPEG


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (404, PermanentError),
        (403, PermanentError),
        (410, PermanentError),
        (500, TransientError),
        (503, TransientError),
        (429, TransientError),
    ],
)
def test_http_errors_are_permanent_or_transient(
    photo_host: PhotoHost, code: int, error: type[Exception]
) -> None:
    url = photo_host.add("e.jpg", status(code))
    with pytest.raises(error, match=f"HTTP {code}") as raised:
        fetch(url, LOCAL)
    if code < 500 and code != 429:
        assert not isinstance(raised.value, TransientError)


def test_a_closed_port_is_a_transient_failure(listener: Listener) -> None:
    port = listener.port
    listener.close()
    with pytest.raises(TransientError):
        fetch(f"http://127.0.0.1:{port}/photo.jpg", LOCAL)


# --- TLS -----------------------------------------------------------------------------


@pytest.fixture
def untrusted_https_host(tmp_path: Path) -> Iterator[str]:
    """An HTTPS photo host with a self-signed certificate for 127.0.0.1."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    host = PhotoHost().start()
    host.add("a.jpg", serve_bytes(JPEG))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    assert host._server is not None
    host._server.socket = context.wrap_socket(host._server.socket, server_side=True)
    yield f"https://127.0.0.1:{host.port}/a.jpg"
    host.stop()


def test_a_certificate_that_is_not_trusted_fails_permanently(untrusted_https_host: str) -> None:
    with pytest.raises(PermanentError, match=r"TLS error talking to 127\.0\.0\.1") as raised:
        fetch(untrusted_https_host, LOCAL)
    assert not isinstance(raised.value, TransientError)


def test_a_tls_handshake_that_never_comes_fails_by_the_total_deadline() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # the kernel accepts; nobody ever speaks TLS
        started = time.monotonic()
        with pytest.raises(TransientError, match="longer than 1s"):
            fetch(
                f"https://127.0.0.1:{server.getsockname()[1]}/a.jpg",
                FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), total_timeout=1.0),
            )
        assert time.monotonic() - started < 2.0
