"""The command processor: the single writer of the partitions it owns.

Each poll brings a run of command records per partition. For a run, the processor
decodes every record (bad ones are dead-lettered, G7), answers repeats of accepted
commands from the log (G3), loads each document from its cache or its snapshot + event tail, moves a
client's mutation onto the versions its own earlier mutations made (``rebasing``), lets
the conflict policy and the handler decide (G4), and hands the whole run to the
stream's atomic ``commit``: events, results, dead letters and the input offset
together (G2); the runs of one poll are decided together (``decide_round``: one look-up of the
processed commands and one load of the missing documents per poll) and committed together (``commit_many``), so an
adapter can overlap their transactions. A fenced or conflicting commit drops the cache; the stream then
redelivers the run and the decision is made again on fresh state (G8).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from itertools import groupby

from ..domain.documents import Document, DocumentEvent, apply, fold, split_aggregate_id
from ..domain.errors import DomainError, InvalidInput, LogError, SyncBackboneError, rejection_code
from ..domain.policies import PolicyBook
from ..domain.records import EventMeta, NewEvent
from .base_versions import Bases, base_loader
from .handlers import handle
from .models import Command
from .ports import Codec, CommandRecord, CommandStream, EventLog, PartitionOutcome
from .rebasing import MAX_SPAN, Run, after_accepting, is_stale, rebased, run_of
from .results import CommandResult, DeadLetter, accepted, rejected
from .snapshots import Snapshots

log = logging.getLogger(__name__)
RETRY_PAUSE_S = 1.0
MAX_CACHED_DOCUMENTS = 100_000
MAX_EVENT_BYTES = 512 * 1024  # well under Kafka's default 1 MB record limit, envelope and headers included
ResultsListener = Callable[[Sequence[CommandResult]], None]


HANDLER_FAILED = "the command could not be handled; it was dead-lettered with the details"


def public_reason(error: Exception, otherwise: str) -> str:
    """What a submitter is told: our own errors say what is wrong; anything else, only ``otherwise``."""
    return str(error) if isinstance(error, SyncBackboneError) else otherwise


class CommandProcessor:
    """Consumes owned command partitions and turns commands into events and results."""

    def __init__(
        self,
        log_: EventLog,
        stream: CommandStream,
        codec: Codec,
        policies: PolicyBook | None = None,
        on_results: ResultsListener | None = None,
        snapshots: Snapshots | None = None,
    ) -> None:
        self._log = log_
        self._snapshots = snapshots
        self._stream = stream
        self._codec = codec
        self._policies = policies or PolicyBook()
        self._on_results = on_results
        self._docs: dict[str, Document] = {}
        self._runs: dict[str, Run | None] = {}  # per cached document; absent: not known (loaded cold)
        self._bases: Bases = {}  # versions merged against in the current run
        stream.on_reassign(self._reassigned)

    def run(self, stop: threading.Event, poll_timeout_s: float = 0.2) -> None:
        """Process until ``stop`` is set; a failing round (log or database unavailable) is retried."""
        while not stop.is_set():
            try:
                self.run_once(poll_timeout_s)
            except SyncBackboneError as e:  # run_once rewound the stream: the records come again
                log.warning("processing failed (%s); retrying in %.0f s", e, RETRY_PAUSE_S)
                self._forget()
                stop.wait(RETRY_PAUSE_S)

    def run_once(self, timeout_s: float = 0.2) -> int:
        """Process one poll's worth of records; return how many records it held."""
        records = self._stream.poll(timeout_s)
        try:
            outcomes = self.decide_round([list(run) for _, run in groupby(records, key=lambda r: r.partition)])
        except BaseException:  # nothing of this round was committed: deliver its records again
            self._stream.rewind()
            raise
        for outcome, committed in zip(outcomes, self._stream.commit_many(outcomes), strict=True):
            self._committed(outcome, committed)
        return len(records)

    def close(self) -> None:
        """Leave the group and release the stream."""
        self._stream.close()

    def cached(self, aggregate_id: str) -> Document | None:
        """The live state this processor decides with, if the aggregate is loaded."""
        return self._docs.get(aggregate_id)

    def _reassigned(self, owned: frozenset[int]) -> None:
        self._forget()

    def _forget(self) -> None:
        """Drop every cached document and run: they are loaded again from the log."""
        self._docs.clear()
        self._runs.clear()

    def _committed(self, outcome: PartitionOutcome, results: list[CommandResult] | LogError) -> None:
        if isinstance(results, LogError):
            log.warning("commit of partition %s failed (%s); will retry on fresh state", outcome.partition, results)
            self._forget()
            return
        if self._snapshots is not None:
            self._snapshots.noted(results)
        if self._on_results:
            self._on_results(results)

    def decide(self, records: Sequence[CommandRecord]) -> PartitionOutcome:
        """The outcome of a run of records of one partition (no I/O but log reads)."""
        (outcome,) = self.decide_round([records])
        return outcome

    def decide_round(self, runs: Sequence[Sequence[CommandRecord]]) -> list[PartitionOutcome]:
        """The outcome of each run of a round (one run per partition). The log is asked once for the whole
        round which commands it holds already, and the documents missing from the cache are loaded together."""
        outcomes = [PartitionOutcome(partition=run[0].partition, next_offset=run[-1].offset + 1) for run in runs]
        decoded = [self._decode_all(run, outcome) for run, outcome in zip(runs, outcomes, strict=True)]
        commands = [cmd for run in decoded for cmd, _ in run]
        prior = self._log.find_commands([(c.aggregate_id, c.command_id) for c in commands])
        self._warm_cache({c.aggregate_id for c in commands if c.command_id not in prior})
        for outcome, run in zip(outcomes, decoded, strict=True):
            self._bases = {}
            seen: set[str] = set()
            for cmd, record in run:
                if cmd.command_id in seen:
                    continue
                seen.add(cmd.command_id)
                if cmd.command_id in prior:
                    outcome.answered.append(accepted(cmd.command_id, cmd.aggregate_id, prior[cmd.command_id]))
                else:
                    self._decide_one(cmd, record, outcome)
        return outcomes

    def _decode_all(
        self, records: Sequence[CommandRecord], outcome: PartitionOutcome
    ) -> list[tuple[Command, CommandRecord]]:
        decoded = []
        for record in records:
            try:
                decoded.append((self._codec.decode_command(record.value), record))
            except Exception as e:  # any record that cannot be decoded is poison: dead-letter it, keep flowing
                outcome.dead.append(dead_letter(record, e))
                command_id = header(record, "command_id")
                if command_id and len(command_id) <= 200 and "\x00" not in command_id:  # tell a waiting submitter
                    reason = public_reason(e, "the command could not be decoded; it was dead-lettered")
                    outcome.answered.append(rejected(command_id, (record.key or "")[:400], 0, reason, "invalid"))
        return decoded

    def _warm_cache(self, aggregate_ids: set[str]) -> None:
        missing = [agg for agg in aggregate_ids if agg not in self._docs]
        if not missing:
            return
        if self._snapshots is not None:  # bounded: the latest snapshot plus the events after it
            self._docs.update({agg: r.document for agg, r in self._snapshots.load(missing).items()})
            return
        for agg, stored in self._log.read_aggregates(missing).items():
            self._docs[agg] = fold(Document(*split_aggregate_id(agg)), map(self._codec.decode_event, stored))

    def _decide_one(self, cmd: Command, record: CommandRecord, outcome: PartitionOutcome) -> None:
        doc = self._docs.get(cmd.aggregate_id) or Document(cmd.collection, cmd.id)
        cmd = self._rebased(cmd, doc)
        try:
            base = base_loader(self._log, self._codec, cmd.aggregate_id, outcome, self._bases)
            events = handle(cmd, doc, self._policies, base)
        except (DomainError, InvalidInput) as e:  # a rule refuses it, or it breaks a limit (second line)
            outcome.answered.append(rejected(cmd.command_id, cmd.aggregate_id, doc.version, str(e), code_of(e)))
            return
        except LogError:  # the log could not be read (e.g. base versions): the round fails and comes again
            raise
        except Exception as e:  # a handler that raises is a poison command: dead-letter it, keep flowing
            log.exception("handler failed on command %s", cmd.command_id)
            outcome.dead.append(dead_letter(record, e))
            outcome.answered.append(
                rejected(cmd.command_id, cmd.aggregate_id, doc.version, HANDLER_FAILED, "dead_lettered")
            )
            return
        try:
            after, new = self._encode(cmd, doc, events)
        except InvalidInput as e:  # e.g. events too large for the log
            outcome.answered.append(rejected(cmd.command_id, cmd.aggregate_id, doc.version, str(e), code_of(e)))
            return
        self._keep(cmd, doc.version, after)
        outcome.accepted.append((cmd.command_id, cmd.aggregate_id, new))

    def _keep(self, cmd: Command, before: int, doc: Document) -> None:
        """Cache ``doc`` as ``cmd`` left it (from version ``before``), and the run of versions it extends."""
        if len(self._docs) >= MAX_CACHED_DOCUMENTS:  # a miss only reloads from the log
            self._forget()
        run = self._runs.get(cmd.aggregate_id)
        self._runs[cmd.aggregate_id] = after_accepting(run, cmd.command_id, before, doc.version)
        self._docs[cmd.aggregate_id] = doc

    def _rebased(self, cmd: Command, doc: Document) -> Command:
        """``cmd`` moved onto ``doc``'s version if its base lies in a run of its own client's versions."""
        if not is_stale(cmd, doc.version):
            return cmd
        if cmd.aggregate_id not in self._runs:  # loaded cold: the events after the base tell whose they are
            base = cmd.expected_version or 0
            if doc.version - base > MAX_SPAN:
                return cmd
            self._runs[cmd.aggregate_id] = run_of(self._log.read_aggregate(cmd.aggregate_id, base + 1), doc.version)
        return rebased(cmd, doc.version, self._runs[cmd.aggregate_id])

    def _encode(self, cmd: Command, doc: Document, events: Sequence[DocumentEvent]) -> tuple[Document, list[NewEvent]]:
        """The document after ``events`` and the events encoded; InvalidInput if they cannot be stored."""
        meta = meta_of(cmd)
        new = []
        for event in events:
            doc = apply(doc, event)
            new.append(self._codec.new_event(cmd.aggregate_id, doc.version, event, meta))
        size = sum(len(e.payload) for e in new)
        if size > MAX_EVENT_BYTES:
            raise InvalidInput(f"the command's events take {size:,} bytes; the limit is {MAX_EVENT_BYTES:,}")
        return doc, new


def meta_of(cmd: Command) -> EventMeta:
    """Envelope metadata that an event inherits from the command that caused it."""
    return EventMeta(
        causation_id=cmd.command_id,
        correlation_id=cmd.correlation_id or cmd.command_id,
        actor=cmd.actor,
        client_id=cmd.client_id,
        tenant=cmd.tenant,
    )


def code_of(error: SyncBackboneError) -> str:
    """The machine-readable code of a rejection."""
    return rejection_code(error)


def header(record: CommandRecord, name: str) -> str | None:
    """The value of header ``name`` of ``record``, decoded as UTF-8 (None if absent or not text)."""
    for key, value in record.headers:
        if key == name:
            try:
                return value.decode()
            except UnicodeDecodeError:
                return None
    return None


def dead_letter(record: CommandRecord, error: Exception) -> DeadLetter:
    """A dead letter keeping ``record`` whole with the reason it could not be processed."""
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        error_type=type(error).__name__,
        error=str(error),
        headers=record.headers,
    )
