"""Cluster naming by a chat model behind an OpenAI-compatible chat-completions endpoint.

Only the standard library is used (``urllib.request`` and ``json``). Replies are cached as
JSON files keyed by a fingerprint of the cluster, so a rerun on the same clusters sends no
requests. Every failure (HTTP error, timeout, refused connection, a reply that is not the
requested JSON object) falls back to the keyword name and logs a warning that names the
cluster and the error. The API key is never logged, never put into an exception message and
never shown by ``repr``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import math
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .naming import ClusterName

__all__ = ["MAX_DESCRIPTION_CHARS", "MAX_NAME_CHARS", "ChatNamer"]

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 60
MAX_DESCRIPTION_CHARS = 300

# Part of the fingerprint, so that changing the prompt below invalidates cached replies.
_PROMPT_VERSION = 1

_SYSTEM_PROMPT = (
    "You label clusters of documents taken from a web-scale text corpus. Reply with a single "
    'JSON object with exactly two string fields: "name", a topic label of at most '
    f'{MAX_NAME_CHARS} characters, and "description", one sentence that says what the '
    "documents are about. Write nothing outside the JSON object."
)

# A chat reply for a name is a few hundred bytes. Anything far larger is not the requested
# reply and is not read into memory.
_MAX_RESPONSE_BYTES = 1024 * 1024

# 429 (rate limit) and server errors are worth repeating. Other 4xx codes (bad key, bad model
# name) fail the same way on every attempt.
_RETRY_STATUS = frozenset({408, 429})

_CODE_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


class _RejectRedirects(urllib.request.HTTPRedirectHandler):
    """Redirect handler that follows no redirect, so a 3xx response raises ``HTTPError``.

    urllib would otherwise repeat the request, Authorization header included, at whatever
    host the Location header names.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _InvalidReply(ValueError):
    """Response of the endpoint that is not the requested JSON object."""


class ChatNamer:
    """Names clusters with a chat model behind an OpenAI-compatible chat-completions API.

    Parameters
    ----------
    base_url : str
        API root, for example ``"https://api.openai.com/v1"`` or ``"http://127.0.0.1:8000/v1"``.
        Requests go to ``base_url + "/chat/completions"``. Only http and https are accepted.
    model : str
        Model name sent with every request. It is part of the cache fingerprint.
    api_key : str or None
        Sent as ``Authorization: Bearer <api_key>``. The caller reads it, for example from an
        environment variable. None sends no Authorization header, for local servers.
    timeout : float
        Socket timeout in seconds for connecting and for each read of one request.
        Redirects are not followed, so a 3xx status counts as a failure.
    max_retries : int
        Number of repeats after a timeout, a connection error, HTTP 408, 429 or a 5xx
        status. Other failures are not repeated.
    backoff : float
        Seconds before the first repeat. The wait doubles on each further repeat.
    cache_dir : str or Path, optional
        Folder for cached replies, created on first write. None disables the cache.
    max_excerpt_chars : int
        Characters of each representative excerpt sent in the prompt.
    json_mode : bool
        Whether to send ``response_format = {"type": "json_object"}``. Turn it off for
        servers that reject the field.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        backoff: float = 1.0,
        cache_dir: str | os.PathLike | None = None,
        max_excerpt_chars: int = 600,
        json_mode: bool = True,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url) if isinstance(base_url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                f"base_url must be an http or https URL such as 'https://api.openai.com/v1', "
                f"got {base_url!r}"
            )
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if api_key is not None and not isinstance(api_key, str):
            # The value itself stays out of the message because it may be a secret.
            raise ValueError(f"api_key must be a string or None, got {type(api_key).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            0 < timeout < math.inf
        ):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not (
            0 <= backoff < math.inf
        ):
            raise ValueError(f"backoff must be a number of seconds >= 0, got {backoff!r}")
        if (
            isinstance(max_excerpt_chars, bool)
            or not isinstance(max_excerpt_chars, int)
            or max_excerpt_chars < 1
        ):
            raise ValueError(
                f"max_excerpt_chars must be an integer >= 1, got {max_excerpt_chars!r}"
            )

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.max_excerpt_chars = max_excerpt_chars
        self.json_mode = json_mode
        self._api_key = api_key or None
        self._opener = urllib.request.build_opener(_RejectRedirects)

    def __repr__(self) -> str:
        key_state = "'***'" if self._api_key else "None"
        return (
            f"ChatNamer(base_url={self.base_url!r}, model={self.model!r}, api_key={key_state}, "
            f"timeout={self.timeout}, max_retries={self.max_retries}, "
            f"cache_dir={str(self.cache_dir) if self.cache_dir else None!r})"
        )

    def fingerprint(self, keywords: Sequence[str], representative_ids: Sequence) -> str:
        """Compute the cache key of a cluster: a SHA-256 hex digest.

        The digest covers the model, the prompt version, the sorted representative ids (as
        strings) and the sorted keywords. Sorting keeps the key when only the order of the
        keywords changes.
        """
        content = {
            "prompt_version": _PROMPT_VERSION,
            "model": self.model,
            "representative_ids": sorted(str(identifier) for identifier in representative_ids),
            "keywords": sorted(str(term) for term in keywords),
        }
        encoded = json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()

    def name_cluster(
        self,
        cluster: int,
        keywords: Sequence[str],
        representative_ids: Sequence,
        excerpts: Sequence[str],
        fallback: ClusterName,
    ) -> ClusterName:
        """Name one cluster from the cache or from the chat model, else return ``fallback``.

        Parameters
        ----------
        cluster : int
            Cluster id, used in log messages.
        keywords : sequence of str
            Keywords of the cluster, best first.
        representative_ids : sequence
            Document ids of the representatives, part of the cache fingerprint.
        excerpts : sequence of str
            Representative texts. Each is cut to ``max_excerpt_chars`` for the prompt.
        fallback : ClusterName
            Name returned, with a logged warning, when the request or its reply fails.

        Returns
        -------
        ClusterName
            Source "cache", "chat", or the fallback's own source.
        """
        fingerprint = self.fingerprint(keywords, representative_ids)
        cached = self._read_cache(cluster, fingerprint)
        if cached is not None:
            return cached

        messages = self._messages(keywords, excerpts)
        try:
            content = self._complete(cluster, messages)
            name, description = _parse_reply(content)
        except (OSError, http.client.HTTPException, ValueError) as error:
            logger.warning(
                "Chat naming of cluster %s failed, so it keeps the keyword name %r: %s",
                cluster,
                fallback.name,
                self._redact(_describe(error)),
            )
            return fallback

        self._write_cache(cluster, fingerprint, name, description)
        return ClusterName(name=name, description=description, source="chat")

    def _messages(self, keywords: Sequence[str], excerpts: Sequence[str]) -> list[dict]:
        lines = [f"Keywords: {', '.join(keywords) if keywords else '(none)'}", ""]
        lines.append("Representative documents:")
        for number, excerpt in enumerate(excerpts, start=1):
            text = " ".join(str(excerpt).split())[: self.max_excerpt_chars]
            lines.append(f"{number}. {text}")
        return [
            {"role": "system", "content": _SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(lines)},
        ]

    def _complete(self, cluster: int, messages: list[dict]) -> str:
        """Send one chat-completions request, repeating transient failures, and return the text."""
        payload = {"model": self.model, "messages": messages, "temperature": 0}
        if self.json_mode:
            payload["response_format"] = {"type": "json_object"}
        body = json.dumps(payload).encode("utf-8")

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"

        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(
                f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST"
            )
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    raw = response.read(_MAX_RESPONSE_BYTES + 1)
                return _reply_content(raw)
            except (OSError, http.client.HTTPException) as error:
                if isinstance(error, urllib.error.HTTPError):
                    # An HTTPError contains the open response. Closing it frees the connection.
                    error.close()
                if attempt == self.max_retries or not _is_transient(error):
                    raise
                wait = self.backoff * 2**attempt
                logger.warning(
                    "Chat naming request for cluster %s failed (attempt %d of %d), retrying in "
                    "%.1f s: %s",
                    cluster,
                    attempt + 1,
                    self.max_retries + 1,
                    wait,
                    self._redact(_describe(error)),
                )
                time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _cache_path(self, fingerprint: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{fingerprint}.json"

    def _read_cache(self, cluster: int, fingerprint: str) -> ClusterName | None:
        path = self._cache_path(fingerprint)
        if path is None or not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            name, description = _validate_fields(stored)
        except (OSError, ValueError) as error:
            logger.warning(
                "Ignoring unreadable cached name %s of cluster %s: %s", path, cluster, error
            )
            return None
        return ClusterName(name=name, description=description, source="cache")

    def _write_cache(self, cluster: int, fingerprint: str, name: str, description: str) -> None:
        path = self._cache_path(fingerprint)
        if path is None:
            return
        record = {"name": name, "description": description, "model": self.model}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)

            # Write to a temporary file and rename it, so a crash never leaves half a file
            # that a later run would read.
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
            ) as handle:
                json.dump(record, handle, ensure_ascii=False)
            os.replace(handle.name, path)
        except OSError as error:
            logger.warning("Could not cache the name of cluster %s in %s: %s", cluster, path, error)

    def _redact(self, text: str) -> str:
        # Servers can echo request headers in error text, so the key is masked defensively.
        if self._api_key:
            return text.replace(self._api_key, "***")
        return text


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code in _RETRY_STATUS or error.code >= 500
    return True


def _describe(error: BaseException) -> str:
    """Return a one-line description of ``error`` that never includes a response body."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, TimeoutError):
        return "request timed out"
    return f"{type(error).__name__}: {error}"


def _reply_content(raw: bytes) -> str:
    """Return the message text of a chat-completions response body."""
    if len(raw) > _MAX_RESPONSE_BYTES:
        raise _InvalidReply(f"response body is larger than {_MAX_RESPONSE_BYTES} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _InvalidReply(f"response body is not JSON ({error})") from None

    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _InvalidReply("response has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise _InvalidReply(f"message content is {type(content).__name__}, not a string")
    return content


def _parse_reply(content: str) -> tuple[str, str]:
    """Return the validated name and description from the model's message text."""
    text = content.strip()

    # Some models wrap the object in a Markdown code fence despite the instruction.
    fenced = _CODE_FENCE.match(text)
    if fenced:
        text = fenced.group(1)

    try:
        fields = json.loads(text)
    except json.JSONDecodeError:
        raise _InvalidReply(f"message content is not a JSON object: {text[:80]!r}") from None
    return _validate_fields(fields)


def _validate_fields(fields) -> tuple[str, str]:
    if not isinstance(fields, dict):
        raise _InvalidReply(f"expected a JSON object, got {type(fields).__name__}")

    values = {}
    for key, limit in (("name", MAX_NAME_CHARS), ("description", MAX_DESCRIPTION_CHARS)):
        value = fields.get(key)
        if not isinstance(value, str) or not value.strip():
            preview = repr(value)[:80]
            raise _InvalidReply(f"field {key!r} is missing or not a non-empty string: {preview}")

        # One line: newlines and runs of spaces become single spaces.
        value = " ".join(value.split())
        if len(value) > limit:
            raise _InvalidReply(f"field {key!r} has {len(value)} characters, more than {limit}")
        values[key] = value
    return values["name"], values["description"]
