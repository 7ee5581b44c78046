"""Password authentication, server side: SCRAM-SHA-256 (RFC 5802/7677, as Postgres does it) and md5.

The password itself is never logged and never leaves this module; SCRAM keys are derived once at boot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCRAM_ITERATIONS = 4096  # Postgres's default scram_iterations


class AuthFailed(Exception):
    """Wrong user or password, or a broken exchange: FATAL 28P01."""


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


@dataclass(frozen=True)
class ScramVerifier:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, iterations: int = SCRAM_ITERATIONS) -> ScramVerifier:
        salt = secrets.token_bytes(16)
        # SASLprep is skipped: Postgres also falls back to the raw bytes when the password is not valid UTF-8
        # normalisable text, and clients send ASCII passwords unchanged.
        salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        return cls(salt, iterations, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key"))


class ScramExchange:
    """One SCRAM-SHA-256 conversation: client-first -> server-first; client-final -> server-final."""

    MECHANISM = "SCRAM-SHA-256"

    def __init__(self, verifier: ScramVerifier):
        self.verifier = verifier
        self.client_first_bare = ""
        self.server_first = ""
        self.nonce = ""

    def server_first_message(self, client_first: bytes) -> bytes:
        try:
            text = client_first.decode("utf-8")
            gs2_flag, _authzid, bare = text.split(",", 2)
        except (UnicodeDecodeError, ValueError):
            raise AuthFailed("malformed SCRAM client-first message") from None
        if gs2_flag.startswith("p="):
            raise AuthFailed("channel binding is not supported")  # we never advertise -PLUS
        attrs = dict(part.split("=", 1) for part in bare.split(",") if "=" in part)
        client_nonce = attrs.get("r")
        if not client_nonce:
            raise AuthFailed("malformed SCRAM client-first message")
        self.client_first_bare = bare
        self.nonce = client_nonce + base64.b64encode(secrets.token_bytes(18)).decode()
        salt = base64.b64encode(self.verifier.salt).decode()
        self.server_first = f"r={self.nonce},s={salt},i={self.verifier.iterations}"
        return self.server_first.encode()

    def server_final_message(self, client_final: bytes) -> bytes:
        """Checks the client's proof; returns v=<server signature> or raises AuthFailed."""
        try:
            text = client_final.decode("utf-8")
            without_proof, proof_part = text.rsplit(",p=", 1)
            proof = base64.b64decode(proof_part, validate=True)
        except (UnicodeDecodeError, ValueError):
            raise AuthFailed("malformed SCRAM client-final message") from None
        attrs = dict(part.split("=", 1) for part in without_proof.split(",") if "=" in part)
        if attrs.get("r") != self.nonce or len(proof) != 32:
            raise AuthFailed("SCRAM nonce or proof mismatch")
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        client_signature = _hmac(self.verifier.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.verifier.stored_key):
            raise AuthFailed("password mismatch")
        server_signature = _hmac(self.verifier.server_key, auth_message)
        return b"v=" + base64.b64encode(server_signature)


def md5_expected(user: str, password: str, salt: bytes) -> str:
    """What a client sends for md5 auth: 'md5' + md5(md5(password + user) + salt)."""
    inner = hashlib.md5((password + user).encode("utf-8")).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


def md5_check(user: str, password: str, salt: bytes, response: str) -> bool:
    return hmac.compare_digest(md5_expected(user, password, salt), response)
