"""Credentials for a Prefect API started with an auth string, for the calls we make ourselves.

Prefect's open-source server can require HTTP basic credentials on every API route
(``PREFECT_SERVER_API_AUTH_STRING=user:password`` on the server); Prefect's own client sends
``PREFECT_API_AUTH_STRING``. The few raw HTTP calls the project makes (doctor, deploy listing)
send the same header, and every command checks access once before doing anything, so a missing or
wrong credential ends in one line that says which variable to set, not in a traceback mid-run.
"""

from __future__ import annotations

import base64
import os

import httpx

from rlhf_core.errors import ConfigError

AUTH_ENV = "PREFECT_API_AUTH_STRING"
SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"


class ApiAccessError(ConfigError):
    """The Prefect API refused our credentials (or has none of ours), or does not answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "<prefect api>")


def auth_headers() -> dict[str, str]:
    """The ``Authorization`` header for ``PREFECT_API_AUTH_STRING`` (none when it is unset)."""
    value = os.environ.get(AUTH_ENV)
    if not value:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def refused_message(url: str, status: int) -> str:
    """One line for a 401/403 from the API at ``url``."""
    given = "the credential in PREFECT_API_AUTH_STRING was refused" if os.environ.get(AUTH_ENV) \
        else "no credential was sent"
    return (f"the Prefect API at {url} refused the request ({status} Unauthorized: {given}); set "
            "PREFECT_API_AUTH_STRING to the server's PREFECT_SERVER_API_AUTH_STRING (user:password)")


def check_access(url: str, timeout_s: float = 10.0) -> None:
    """Make one authenticated request (``GET /admin/version``) to the API at ``url``.

    Raises:
        ApiAccessError: 401/403 (naming the variable to set), or the API does not answer.
    """
    base = url.rstrip("/")
    try:
        reply = httpx.get(f"{base}/admin/version", headers=auth_headers(), timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ApiAccessError(f"the Prefect API at {url} does not answer ({type(exc).__name__}); "
                             "start it or fix PREFECT_API_URL") from None
    if reply.status_code in (401, 403):
        raise ApiAccessError(refused_message(url, reply.status_code))
    if reply.status_code >= 400:
        raise ApiAccessError(f"the Prefect API at {url} answered {reply.status_code} to "
                             "/admin/version; is PREFECT_API_URL a Prefect API (…/api)?")


def share_server_credential() -> None:
    """A server this process starts inherits ``PREFECT_SERVER_API_AUTH_STRING``; let our own
    client (and the workers, through the environment) present it unless one is already set."""
    server = os.environ.get(SERVER_AUTH_ENV)
    if server and not os.environ.get(AUTH_ENV):
        os.environ[AUTH_ENV] = server
