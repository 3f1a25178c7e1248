"""Typed exception hierarchy for RLHF Contract Wizard.

Every error message says what failed, where (file:line:col, YAML path, run id, shard, row) and
what to do about it. Callers (CLI, flows) print ``str(err)`` as one line.
"""

from __future__ import annotations


class WizardError(Exception):
    """Base class of every error the project raises on purpose."""


def first_line(exc: BaseException, limit: int = 500) -> str:
    """The first non-empty line of ``str(exc)``, or the exception's type name when it has none.

    ``KeyboardInterrupt()`` and many cancellation exceptions carry an empty message; a run record
    still needs a one-line reason, so the type name stands in for it.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__


class ContractError(WizardError):
    """A contract file is invalid (schema, values, references)."""


class SourceLocatedError(ContractError):
    """A contract error with a source position and a caret line.

    Args:
        message: What failed and what to do.
        file: Source file name (or ``<string>``).
        line: 1-based line number.
        col: 1-based column number.
        source_line: The text of the offending line, used for the caret display.
    """

    def __init__(
        self,
        message: str,
        file: str = "<string>",
        line: int = 1,
        col: int = 1,
        source_line: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.source_line = source_line
        super().__init__(f"{file}:{line}:{col}: {message}")

    @property
    def caret(self) -> str:
        """The offending source line followed by a caret under the column (empty if unknown)."""
        if self.source_line is None:
            return ""
        return f"{self.source_line}\n{' ' * (self.col - 1)}^"

    def pretty(self) -> str:
        """The one-line message plus the caret display."""
        caret = self.caret
        return f"{self}\n{caret}" if caret else str(self)


class ContractSyntaxError(SourceLocatedError):
    """Legal-Blocks text that does not parse."""


class ContractTypeError(SourceLocatedError):
    """Legal-Blocks text that parses but is ill-typed or names something undeclared."""


class ContractSchemaError(SourceLocatedError):
    """A contract YAML document whose structure or values are invalid (names the YAML path)."""


class ConfigError(WizardError):
    """A configuration file or option is invalid (pipeline presets, ``prefect.yaml``, CLI options).

    Args:
        message: What failed and what to do.
        where: The file (optionally ``file:line:col``) or ``<command line>``; None if unknown.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class SignatureError(WizardError):
    """A signature, key or approval quorum check failed."""


class KeyFileError(SignatureError):
    """A key file cannot be read or decrypted (wrong passphrase, bad format, permissions)."""


class DataError(WizardError):
    """Input data cannot be read or does not match what the adapter expects."""


class SchemaMismatchError(DataError):
    """A table does not carry the columns or types a contract or lake schema requires."""


class DataQualityError(DataError):
    """Too many rows failed quality checks (the failure rate exceeded the configured threshold)."""


class AccessDeniedError(WizardError):
    """A principal may not perform an action under the installed access policy.

    The message is one line naming the principal, the action and the missing permission (or the
    token check that failed) and what to do; every denial is also written to the audit log.

    Args:
        message: The one-line denial.
        principal: Who asked (``anonymous`` without credentials), when known.
        action: The refused action (``run``, ``export`` ...), when known.
    """

    def __init__(self, message: str, *, principal: str | None = None, action: str | None = None) -> None:
        self.principal = principal
        self.action = action
        super().__init__(message)


class TokenError(AccessDeniedError):
    """A run token (EdDSA JWT) failed verification: its reason alone, without the action."""


class LakeError(WizardError):
    """Reading or writing the lake / warehouse failed."""


class LakeKeyError(KeyFileError, LakeError):
    """The lake's master key cannot be used: no passphrase, a wrong one, an altered key file, or
    encrypted text read without the key."""


class AuditError(WizardError):
    """The audit log is broken: an entry was edited, removed, reordered or the tail was cut."""


class OptimizationDivergedError(WizardError):
    """A numerical optimisation did not converge or produced non-finite values."""


class PlannerError(WizardError):
    """A campaign or PSPLIB instance is invalid (cycles, unknown references, over-capacity)."""


class RemoteScoringError(WizardError):
    """A remote reward-model endpoint failed beyond what retries and the breaker allow."""


class CircuitOpenError(RemoteScoringError):
    """The circuit breaker for an endpoint is open; calls fail fast until it half-opens."""


class RemoteResponseError(RemoteScoringError):
    """An endpoint answered, but not with one finite number per row (the batch is quarantined)."""


class RemoteRetriesExhaustedError(RemoteScoringError):
    """A batch kept failing transiently (5xx, 429, timeouts, resets) after every allowed retry."""


class DeploymentError(WizardError):
    """Deployments cannot be registered or served (no Prefect API, work pool, or deploy failure)."""


class ConfinementError(WizardError):
    """A path or URI given to a run lies outside the configured roots (refused before a byte of it
    is read or written); the message names the parameter, the resolved path and the allowed roots.

    Args:
        message: What was refused and what to do.
        parameter: The parameter (``data``, ``lake_root``, ``--out``, ...).
        resolved: The path after symlinks and ``..`` were resolved (a URI as given).
    """

    def __init__(self, message: str, parameter: str = "", resolved: str = "") -> None:
        self.parameter = parameter
        self.resolved = resolved
        super().__init__(message)
