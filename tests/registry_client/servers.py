"""Real servers for the client tests: CNCF distribution, and a JWT token service.

``Distribution`` runs ``/usr/bin/docker-registry`` (Debian's CNCF distribution)
on 127.0.0.1 with a generated config: filesystem storage in a temp dir, no auth,
htpasswd (bcrypt) or token auth. ``TokenServer`` is a small real HTTP server
that issues RS256 JWTs in the format distribution verifies (x5c chain to a
root in its ``rootcertbundle``), with the GET (Basic) and OAuth2 POST flows.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.helpers import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"


def wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


# -- keys and certificates ---------------------------------------------------------------


@dataclass
class KeyPair:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    @property
    def cert_der_b64(self) -> str:
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()


def make_keypair(
    common_name: str,
    *,
    san_ips: tuple[str, ...] = (),
    ca: bool = True,
    san_dns: tuple[str, ...] = (),
) -> KeyPair:
    """A self-signed RSA certificate (usable as its own root)."""
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san_ips:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(ip)) for ip in san_ips]
                + [x509.DNSName(name) for name in ("localhost", *san_dns)]
            ),
            critical=False,
        )
    return KeyPair(key, builder.sign(key, hashes.SHA256()))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- the token server --------------------------------------------------------------------


@dataclass
class TokenRequest:
    method: str
    user: str | None
    scopes: list[str]
    params: dict[str, str]


def _default_policy(user: str | None, kind: str, name: str, actions: list[str]) -> list[str]:
    """Authenticated users get what they ask for; anonymous users may pull public/*."""
    if user is not None:
        return actions
    if kind == "repository" and name.startswith("public/"):
        return [a for a in actions if a == "pull"]
    return []


@dataclass
class TokenServer:
    """A Docker token service: GET with Basic auth, OAuth2 POST (password / refresh_token)."""

    users: dict[str, str]
    service: str = "forklift-test-registry"
    issuer: str = "forklift-test-issuer"
    expires_in: int | None = 300
    policy: Callable[[str | None, str, str, list[str]], list[str]] = _default_policy
    get_allowed: bool = True
    # tokens whose JWT is already expired for the registry (to force a 401 on use)
    spoil_next: int = 0
    keypair: KeyPair = field(default_factory=lambda: make_keypair("forklift test token signer"))
    requests: list[TokenRequest] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if not server.get_allowed:
                    self._reply(405, {"error": "use POST"})
                    return
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    raw = base64.b64decode(header[6:]).decode()
                    name, _, password = raw.partition(":")
                    if server.users.get(name) != password:
                        self._reply(
                            401,
                            {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                        )
                        return
                    user = name
                scopes = query.get("scope", [])
                server.requests.append(
                    TokenRequest("GET", user, scopes, {k: v[0] for k, v in query.items()})
                )
                doc = server.issue(user, scopes, query.get("service", [""])[0])
                if user and query.get("offline_token", [""])[0] == "true":
                    doc["refresh_token"] = server._new_refresh(user)
                self._reply(200, doc)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                scopes = form.get("scope", "").split()
                grant = form.get("grant_type")
                user = None
                if grant == "password":
                    if server.users.get(form.get("username", "")) != form.get("password"):
                        self._reply(400, {"error": "invalid_grant"})
                        return
                    user = form["username"]
                elif grant == "refresh_token":
                    user = server.refresh_tokens.get(form.get("refresh_token", ""))
                    if user is None:
                        self._reply(400, {"error": "invalid_grant"})
                        return
                else:
                    self._reply(400, {"error": "unsupported_grant_type"})
                    return
                server.requests.append(TokenRequest("POST", user, scopes, form))
                doc = server.issue(user, scopes, form.get("service", ""))
                doc["access_token"] = doc.pop("token")
                if form.get("access_type") == "offline":
                    doc["refresh_token"] = server._new_refresh(user)
                self._reply(200, doc)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def _new_refresh(self, user: str) -> str:
        token = secrets.token_urlsafe(24)
        self.refresh_tokens[token] = user
        return token

    def issue(self, user: str | None, scopes: list[str], service: str) -> dict[str, Any]:
        access = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = self.policy(user, kind, name, actions.split(","))
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        exp = now + 600
        if self.spoil_next > 0:
            self.spoil_next -= 1
            exp = now - 600  # beyond distribution's 60 s leeway: rejected on use
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": service,
            "exp": exp,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.keypair.cert_der_b64]}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self.keypair.key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        doc: dict[str, Any] = {"token": signing_input + "." + _b64url(signature)}
        if self.expires_in is not None:
            doc["expires_in"] = self.expires_in
        return doc

    def count(self) -> int:
        return len(self.requests)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- CNCF distribution -------------------------------------------------------------------


@dataclass
class Distribution:
    """A running ``docker-registry`` on 127.0.0.1:<port>."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_distribution(
    root: Path,
    *,
    htpasswd: dict[str, str] | None = None,
    token: TokenServer | None = None,
    tls: KeyPair | None = None,
) -> Distribution:
    """Start CNCF distribution with a generated config under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"secret": secrets.token_hex(16), "headers": {}},
    }
    if htpasswd is not None:
        lines = [
            f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}"
            for user, pw in htpasswd.items()
        ]
        (root / "htpasswd").write_text("\n".join(lines) + "\n")
        config["auth"] = {"htpasswd": {"realm": "forklift-test", "path": str(root / "htpasswd")}}
    if token is not None:
        (root / "token-root.pem").write_bytes(token.keypair.cert_pem)
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(root / "token-root.pem"),
            }
        }
    if tls is not None:
        (root / "tls.crt").write_bytes(tls.cert_pem)
        (root / "tls.key").write_bytes(tls.key_pem)
        config["http"]["tls"] = {
            "certificate": str(root / "tls.crt"),
            "key": str(root / "tls.key"),
        }
    last_error: Exception | None = None
    for _ in range(5):
        port = free_port()
        config["http"]["addr"] = f"127.0.0.1:{port}"
        cfg = root / "config.yml"
        cfg.write_text(yaml.safe_dump(config))
        log = root / "registry.log"
        proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(cfg)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_port(port, 10.0)
        except RuntimeError as exc:
            last_error = exc
            proc.kill()
            proc.wait()
            continue
        if proc.poll() is not None:
            last_error = RuntimeError(log.read_text())
            continue
        return Distribution(root, port, proc, log)
    raise RuntimeError(f"docker-registry did not start: {last_error}")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A plain urllib GET (independent of the client under test)."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
