"""Real Firebase-shaped ID tokens for auth tests, signed with a test key.

The verifier fetches the matching public key over HTTP from a tiny local server,
exactly as it fetches Google's certs in production (AUTH_CERTS_URL points at it).
`emulator_token` builds the unsigned token the Firebase Auth emulator issues, and
`FailingCertsServer` is Google's certs endpoint having a bad day.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

KEY_ID = "test-key-1"


class TokenIssuer:
    def __init__(self, project: str):
        self.project = project
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        self.signer = crypt.RSASigner.from_string(pem, key_id=KEY_ID)
        public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        certs = json.dumps({KEY_ID: public.decode()}).encode()
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                issuer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=60")
                self.end_headers()
                self.wfile.write(certs)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.certs_url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"

    def token(self, email: str = "ops@example.com", verified: bool = True, **overrides) -> str:
        now = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{self.project}",
            "aud": self.project,
            "sub": "uid-" + email.split("@")[0],
            "email": email,
            "email_verified": verified,
            "iat": now,
            "exp": now + 3600,
            "auth_time": now,
            **overrides,
        }
        return jwt.encode(self.signer, claims).decode()

    def close(self) -> None:
        self.server.shutdown()


def firebase_claims(project: str, email: str, verified: bool = True, **overrides) -> dict:
    now = int(time.time())
    return {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": "uid-" + email.split("@")[0],
        "email": email,
        "email_verified": verified,
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        **overrides,
    }


def emulator_token(project: str, email: str = "ops@example.com", verified: bool = True, **overrides) -> str:
    """The shape the Firebase Auth emulator signs in with: alg "none", an empty signature."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = firebase_claims(project, email, verified, **overrides)
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class FailingCertsServer:
    """A certs URL that answers `status` (or, after close(), refuses connections)."""

    def __init__(self, status: int = 503):
        server = self
        self.fetches = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.fetches += 1
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<html>Service Unavailable</html>")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.certs_url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
