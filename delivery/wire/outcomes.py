"""What a carrier says became of each reader's message, and the carrier's interface.

A carrier takes personalised messages one reader at a time and answers per
reader, a window at a time: the SMTP pipeline (delivery.batches.Sender) a
message behind, an ESP's batch API (delivery.wire.esp) once its call of up
to the ESP's limit has been answered. Each outcome is (key, None) for a
message the server accepted, or (key, error) where the error says which of
these it was:

- refused: smtplib's refusals (5xx, or a 4xx about this recipient), or
  `Refused`, an ESP's answer about this one message;
- temporarily refused or unavailable: a 4xx for the whole connection or
  call, `CallRefused`, `NotSent`; the batch stops and is retried;
- throttled: `Throttled` (HTTP 429, SMTP 421/454 "slow down"): the send
  slows down, no attempt is counted against the reader;
- unconfirmed: `Unconfirmed` (the message went out and the answer never
  came): recorded sent with a note, never sent again blindly.
"""

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from delivery.emails import DigestTemplate
    from delivery.models import Delivery

type Outcome[K] = tuple[K, Exception | None]


class Unconfirmed(Exception):
    """The message (or the call carrying it) went out; the server's answer never came.

    It was most likely delivered (RFC 1047): sending it again is how a
    reader gets two copies, or five.
    """


class Refused(Exception):
    """The ESP refused this one message of a call; the others went."""

    def __init__(self, code: int | None, answer: str) -> None:
        super().__init__(f"{code} {answer}" if code is not None else answer)
        self.code = code
        self.answer = answer


class CallRefused(Exception):
    """The ESP refused the whole call (bad credentials, a malformed request): nobody went."""


class Throttled(Exception):
    """The server asks the sender to slow down (HTTP 429; SMTP 421 or 454 throttling)."""

    def __init__(self, answer: str, retry_after: float | None = None) -> None:
        super().__init__(answer)
        self.retry_after = retry_after


class Carrier(Protocol):
    """Readers' digests over an open mail connection, many in flight, outcomes per reader."""

    # True when each answer covers many readers (an ESP's batch call): the
    # ledger records every window's outcomes before the next window goes, so
    # a worker killed at any instant doubles at most the call in flight.
    records_each_window: bool
    # True when a connection that drops is opened again by the carrier itself
    # (an SMTP pool's lanes): the batch goes on without reconnecting.
    reconnects_itself: bool

    def send(self, delivery: "Delivery", digest: "DigestTemplate") -> list[Outcome["Delivery"]]:
        """Hand over this reader's message; return the outcomes now known."""
        ...

    def finish(self) -> list[Outcome["Delivery"]]:
        """Send what is still held or in flight; return its outcomes."""
        ...

    def abort(self) -> list[Outcome["Delivery"]]:
        """Stop: what is held is never sent, a message in flight is never completed.

        Returns the outcomes learnt while stopping (a message being written
        when the stop came, answered meanwhile).
        """
        ...
