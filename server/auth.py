"""API keys: whether a caller may use the server. Transports extract the credential; this module checks it.

Keys come from `--api_key_file` (one per line; blank lines and `#` comments ignored) and the environment
variable SEGSERVING_API_KEYS (comma-separated). Only their SHA-256 digests are kept, and a presented key is
compared with every digest in constant time, so neither the keys nor their prefixes leak through timing or memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

ENV_KEYS = "SEGSERVING_API_KEYS"
CHALLENGE = 'Bearer realm="segserving"'


@dataclass(frozen=True)
class ApiKeys:
    """The accepted keys' digests; with none, the server is open (as Paddle Serving is)."""

    digests: tuple[bytes, ...] = ()

    @classmethod
    def load(cls, key_file: str | None = None, env: str | None = None) -> ApiKeys:
        """Keys from a file and/or a comma-separated string; ValueError (one line) on an unusable file or key."""
        keys: list[str] = []
        if key_file:
            try:
                text = Path(key_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"--api_key_file {key_file}: cannot read it ({exc.__class__.__name__})") from None
            keys += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if env:
            keys += [key.strip() for key in env.split(",") if key.strip()]
        for number, key in enumerate(keys, 1):
            if any(c.isspace() for c in key) or not key.isprintable():
                raise ValueError(f"API key #{number} contains whitespace or unprintable characters")
        return cls(tuple(hashlib.sha256(key.encode()).digest() for key in dict.fromkeys(keys)))

    @classmethod
    def from_environment(cls, key_file: str | None) -> ApiKeys:
        return cls.load(key_file, os.environ.get(ENV_KEYS))

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def accepts(self, presented: str | None) -> bool:
        """Whether `presented` is one of the keys (always True when no keys are set)."""
        return not self.digests or self.identify(presented) is not None

    def identify(self, presented: str | None) -> bytes | None:
        """The digest of `presented` if it is one of the keys (it names the caller, e.g. for --rate_limit)."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "replace")).digest()
        found = False
        for known in self.digests:  # no early exit: the time does not depend on which key matched
            found |= hmac.compare_digest(digest, known)
        return digest if found else None


def credential(authorization: str | None, api_key: str | None) -> str | None:
    """The key a caller presents: `Authorization: Bearer KEY` (scheme case-insensitive) or `X-API-Key: KEY`."""
    if api_key:
        return api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def refusal(presented: str | None) -> str:
    """The 401 message: what was wrong, never the key itself."""
    if presented is None:
        return "missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
    return "invalid API key"
