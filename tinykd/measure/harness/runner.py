"""Benchmark a device sample by sample, recovering from what a serial link does to it.

``BoardSession`` owns the connection: it opens the URL, checks in the handshake that the
device runs the model being benchmarked (same hash, input size and classes), and recovers
after a failure: resynchronise after garbled or lost bytes, re-handshake after a restart,
reopen the port after it vanished (a board re-enumerating on USB). ``run_benchmark``
sends every sample, retries a failed one a limited number of times, and keeps one
``SampleRecord`` per sample: no sample is ever dropped without its reason being written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tinykd.errors import TinyKDError
from tinykd.export import describe_tflite, model_hash
from tinykd.measure.harness.client import (
    DeviceClient,
    DeviceError,
    DeviceInfo,
    DeviceReset,
    Inference,
    ProtocolError,
    Timeouts,
)
from tinykd.measure.harness.link import Link, LinkLost


class DeviceGone(Exception):
    """The port could not be reopened: the device vanished."""


class WrongModel(TinyKDError):
    """The device runs another model than the one being benchmarked."""


class HandshakeFailed(Exception):
    """No valid handshake in the allowed attempts (the link garbles, or it is no DUT)."""


@dataclass(frozen=True)
class ModelIdentity:
    """What the harness knows about the benchmarked model, from its .tflite."""

    name: str
    hash: str
    input_bytes: int
    num_classes: int
    output_scale: float
    output_zero_point: int
    output_is_probabilities: bool = False  # the model ends in SOFTMAX

    @classmethod
    def from_tflite(cls, tflite: bytes, name: str = "model") -> ModelIdentity:
        info = describe_tflite(tflite)
        return cls(
            name=name,
            hash=model_hash(tflite),
            input_bytes=int(np.prod(info.input.shape[1:])),
            num_classes=int(info.output.shape[-1]),
            output_scale=info.output.scale,
            output_zero_point=info.output.zero_point,
            output_is_probabilities=info.output_is_softmax,
        )


@dataclass(frozen=True)
class SessionOptions:
    baud: int = 115200
    timeouts: Timeouts = field(default_factory=Timeouts)
    transport: str = "auto"  # "binary" needs tkd-bulk; "hex" is the MLPerf Tiny db path
    verify_hex: bool = True  # read each hex-loaded input back with db print (hex has no CRC)
    stream_bulk: bool = True  # tkd-bulk: raw bytes right behind the command (no round trip)
    handshake_attempts: int = 3
    reconnect_attempts: int = 5
    reconnect_wait: float = 0.5  # doubled after each failed attempt


def describe_problem(error: BaseException) -> str:
    """A one-line reason for the report, starting with a category word."""
    kinds = {
        DeviceReset: "reset",
        ProtocolError: "protocol",
        DeviceError: "device-error",
        LinkLost: "link-lost",
    }
    for kind, word in kinds.items():
        if isinstance(error, kind):
            return f"{word}: {error}"
    return f"{type(error).__name__}: {error}"


class BoardSession:
    """One device behind one URL, kept usable across resets, garbage and reconnects."""

    def __init__(self, url: str, model: ModelIdentity, options: SessionOptions | None = None):
        self.url, self.model = url, model
        self.options = options or SessionOptions()
        self.events: Counter[str] = Counter()
        self.link: Link | None = None
        self.client: DeviceClient | None = None
        self.info: DeviceInfo | None = None
        self.transport = ""
        self.transport_reason = ""
        self.identity_check = ""

    # ---- connecting ----------------------------------------------------------------
    def open(self) -> DeviceInfo:
        """Connect and handshake; a ``tinykd.measure.devices.Device`` starts its board first."""
        return self.connect()

    def connect(self) -> DeviceInfo:
        """Open the port and handshake, retrying both with a growing wait.

        Raises ``DeviceGone`` (it cannot be opened), ``WrongModel`` (it answered, twice
        alike, with another model) or ``TinyKDError`` (it never gave a valid handshake).
        """
        wait = self.options.reconnect_wait
        last: BaseException | None = None
        for attempt in range(self.options.reconnect_attempts):
            if attempt:
                time.sleep(wait)
                wait *= 2
            if self.link is not None:
                self.link.close()
            try:
                self.link = Link(self.url, self.options.baud)
            except LinkLost as error:
                last = error
                continue
            self.client = DeviceClient(self.link, self.options.timeouts)
            try:
                return self._handshake()
            except (LinkLost, HandshakeFailed) as error:
                last = error
        if isinstance(last, HandshakeFailed):
            raise TinyKDError(
                f"{self.url}: {last}. Is it a tinykd or MLPerf Tiny firmware at the right "
                "baud rate?"
            )
        raise DeviceGone(
            f"{self.options.reconnect_attempts} attempts to open it failed; last: {last}"
        )

    def _handshake(self) -> DeviceInfo:
        last: BaseException | None = None
        for _ in range(self.options.handshake_attempts):
            try:
                info = self.client.handshake()
            except (ProtocolError, DeviceReset) as error:
                last = error
                continue
            self._check(info)
            self.info = info
            return info
        raise HandshakeFailed(
            f"no valid handshake in {self.options.handshake_attempts} attempts ({last})"
        )

    def _check(self, info: DeviceInfo) -> None:
        """Refuse a device that is not (or no longer) the one to benchmark; pick the transport.

        Every fact used here comes from replies that agreed twice (``DeviceClient.agreed``).
        """
        if self.info is not None and info.to_dict() != self.info.to_dict():
            raise WrongModel(
                f"{self.url} describes itself differently after reconnecting "
                f"(before: {self.info.to_dict()}, now: {info.to_dict()}); was it re-flashed?"
            )
        expected = self.model
        if not info.tkd:
            self.identity_check = (
                "not verified: the firmware has no tkd-info (an MLPerf Tiny firmware); "
                f"it names its model {info.model or '?'}"
            )
        elif info.model_hash != expected.hash:
            raise WrongModel(
                f"{self.url} runs model {info.model or '?'} with hash {info.model_hash}; "
                f"{expected.name} has hash {expected.hash}. Flash the device with this model "
                "or benchmark the model it runs."
            )
        for key, wanted in (
            ("input-bytes", expected.input_bytes),
            ("classes", expected.num_classes),
        ):
            value = info.number(key)
            if value is not None and value != wanted:
                raise WrongModel(f"{self.url} reports {key} {value}; {expected.name} has {wanted}.")
        status = info.number("runtime-status")
        if status:
            raise TinyKDError(
                f"{self.url}: the firmware's runtime failed to initialise (code {status}; "
                "3 means the tensor arena is too small). Re-export and re-flash."
            )
        if info.tkd:
            self.identity_check = (
                f"model hash {info.model_hash}, input bytes and classes match "
                "(tkd-info, two identical replies)"
            )
        exact_from_results = expected.output_is_probabilities or expected.num_classes == 1
        if "tkd-output" not in info.commands and not exact_from_results:
            raise TinyKDError(
                f"{self.url} does not offer tkd-output, and its m-results (class probabilities) "
                f"cannot give {expected.name}'s exact int8 outputs. Flash a tinykd firmware."
            )
        self.transport, self.transport_reason = self._choose_transport(info)

    def _choose_transport(self, info: DeviceInfo) -> tuple[str, str]:
        """The input transport and why; a tinykd firmware must offer its binary transport."""
        wanted = self.options.transport
        if wanted == "hex":
            return "hex", "--transport hex was asked for"
        if info.has_bulk:
            return "binary", "the device lists tkd-bulk in help% (two identical replies)"
        if info.tkd:
            raise TinyKDError(
                f"{self.url} answers tkd-info but does not list tkd-bulk in help%: a firmware "
                "older than this harness? Re-flash it, or use --transport hex."
            )
        if wanted == "binary":
            raise TinyKDError(f"{self.url} does not offer tkd-bulk: use --transport hex.")
        return "hex", "an MLPerf Tiny firmware without tkd-bulk (help% lists no tkd-bulk)"

    # ---- recovering ------------------------------------------------------------------
    def recover(self, error: BaseException) -> None:
        """Make the device usable again after ``error``; raises ``DeviceGone`` if it is gone.

        Even after a clean ``e-[…]`` answer the link is resynchronised: the error may come
        from a command that lost bytes, and pipelined commands may still be answering.
        """
        try:
            if isinstance(error, LinkLost):
                raise error
            if isinstance(error, DeviceReset):
                self.events["resets"] += 1
            else:
                self.events["resyncs"] += 1
            restarted = self.client.resync()
            if restarted:
                self.events["resets"] += 1
            if restarted or isinstance(error, DeviceReset):
                self._handshake()  # same model after the restart?
        except (LinkLost, ProtocolError, HandshakeFailed):
            self.events["reconnects"] += 1
            self.connect()

    @property
    def input_check(self) -> str:
        """How a corrupted input would be caught."""
        if self.transport == "binary":
            return "CRC-32 checked by the device (tkd-bulk)"
        if self.options.verify_hex:
            return "read back with db print and compared"
        return "none: --no-verify-input turned the db print read-back off (hex has no checksum)"

    # ---- one sample ----------------------------------------------------------------
    def load(self, data: bytes) -> None:
        if self.transport == "binary":
            self.client.load_binary(data, stream=self.options.stream_bulk)
        else:
            self.client.load_hex(data, self.info.command_size, verify=self.options.verify_hex)

    def infer(self) -> Inference:
        return self.client.infer(
            num_classes=self.model.num_classes,
            output_scale=self.model.output_scale,
            output_zero_point=self.model.output_zero_point,
            output_is_probabilities=self.model.output_is_probabilities,
            raw_output="tkd-output" in self.info.commands,
            ticks="tkd-ticks" in self.info.commands,
        )

    def close(self) -> None:
        if self.link is not None:
            self.link.close()


@dataclass
class SampleRecord:
    """Everything that happened to one sample."""

    index: int
    status: str = "pending"  # "answered" or "failed" once the run is over
    attempts: int = 0
    output: np.ndarray | None = None
    ticks: int | None = None
    lap_us: int | None = None
    load_seconds: float | None = None
    infer_seconds: float | None = None
    problems: list[str] = field(default_factory=list)  # one line per failed attempt
    failure: str | None = None


@dataclass
class DeviceRun:
    """The records of one benchmark on one device, and how the link behaved."""

    url: str
    device: DeviceInfo | None
    transport: str
    records: list[SampleRecord]
    events: Counter
    seconds: float
    input_bytes: int
    baud: int
    aborted: str | None = None
    input_check: str = ""
    transport_reason: str = ""
    identity_check: str = ""

    def accounting(self) -> dict:
        """Sent, answered, retried and failed counts; answered + failed == total, always."""
        records = self.records
        answered = [r for r in records if r.status == "answered"]
        failed = [r for r in records if r.status == "failed"]
        problems = Counter(p.split(":")[0] for r in records for p in r.problems)
        return {
            "total": len(records),
            "sent": sum(r.attempts > 0 for r in records),
            "answered": len(answered),
            "retried": sum(r.attempts > 1 for r in records),
            "failed": len(failed),
            "not_sent": sum(r.attempts == 0 for r in records),
            "attempts": sum(r.attempts for r in records),
            "problems_by_kind": dict(sorted(problems.items())),
            "failures": [
                {"index": r.index, "attempts": r.attempts, "reason": r.failure} for r in failed
            ],
            "events": dict(sorted(self.events.items())),
            "aborted": self.aborted,
        }

    def answered_mask(self) -> np.ndarray:
        return np.array([r.status == "answered" for r in self.records], dtype=bool)

    def outputs(self, num_classes: int) -> np.ndarray:
        """int8 outputs (N, K); rows of unanswered samples are zero (see ``answered_mask``)."""
        result = np.zeros((len(self.records), num_classes), dtype=np.int8)
        for record in self.records:
            if record.output is not None:
                result[record.index] = record.output
        return result

    def link_throughput(self) -> dict:
        """Input bytes moved per second while loading, against the link's byte rate."""
        seconds = sum(r.load_seconds for r in self.records if r.load_seconds is not None)
        loads = sum(r.load_seconds is not None for r in self.records)
        link_rate = self.baud / 10.0
        rate = loads * self.input_bytes / seconds if seconds > 0 else 0.0
        return {
            "transport": self.transport,
            "transport_reason": self.transport_reason,
            "identity_check": self.identity_check,
            "input_check": self.input_check,
            "baud": self.baud,
            "link_bytes_per_second": link_rate,
            "input_bytes_per_second": rate,
            "fraction_of_link": rate / link_rate,
            "loads": loads,
            "load_seconds": seconds,
            "samples_per_second": len(self.records) / self.seconds if self.seconds else 0.0,
        }


ProgressCallback = Callable[[int, int, SampleRecord], None]


def run_benchmark(
    session: BoardSession,  # or a Device (tinykd.measure.devices), which is one
    inputs: np.ndarray,
    *,
    retries: int = 3,
    max_consecutive_failures: int = 5,
    progress: ProgressCallback | None = None,
) -> DeviceRun:
    """Every sample of ``inputs`` (int8, one row per sample) through the device.

    A sample is tried at most ``1 + retries`` times. When the device is gone, or after
    ``max_consecutive_failures`` failed samples in a row, the remaining samples are marked
    failed with that reason instead of being tried.
    """
    started = time.monotonic()
    records = [SampleRecord(index) for index in range(len(inputs))]
    aborted: str | None = None
    consecutive = 0
    if session.info is None:
        session.open()
    for record in records:
        if aborted is not None:
            record.status, record.failure = "failed", f"not sent: {aborted}"
            if progress is not None:
                progress(record.index + 1, len(records), record)
            continue
        data = np.ascontiguousarray(inputs[record.index]).astype(np.int8).tobytes()
        while record.status == "pending":
            record.attempts += 1
            try:
                began = time.monotonic()
                session.load(data)
                loaded = time.monotonic()
                inference = session.infer()
            except (DeviceReset, ProtocolError, DeviceError, LinkLost) as error:
                record.problems.append(describe_problem(error))
                if record.attempts > retries:
                    record.status, record.failure = "failed", record.problems[-1]
                try:
                    session.recover(error)
                except DeviceGone as gone:
                    aborted = f"device vanished ({gone})"
                except TinyKDError as unusable:  # another model, or no valid handshake
                    aborted = f"device unusable: {unusable}"
                if aborted is not None and record.status == "pending":
                    record.status, record.failure = "failed", f"{record.problems[-1]}; {aborted}"
                continue
            record.status = "answered"
            record.output, record.ticks, record.lap_us = (
                inference.output,
                inference.ticks,
                inference.lap_us,
            )
            record.load_seconds = loaded - began
            record.infer_seconds = time.monotonic() - loaded
        consecutive = consecutive + 1 if record.status == "failed" else 0
        if aborted is None and consecutive >= max_consecutive_failures:
            aborted = f"{consecutive} samples in a row failed"
        if progress is not None:
            progress(record.index + 1, len(records), record)
    return DeviceRun(
        url=session.url,
        device=session.info,
        transport=session.transport,
        records=records,
        events=Counter(session.events),
        seconds=time.monotonic() - started,
        input_bytes=session.model.input_bytes,
        baud=session.options.baud,
        aborted=aborted,
        input_check=session.input_check,
        transport_reason=session.transport_reason,
        identity_check=session.identity_check,
    )
