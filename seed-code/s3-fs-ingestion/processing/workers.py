"""Where the chunks of a file are transformed and written: in this process, or shared with worker processes.

One Python process writes at most one core's worth of calls: botocore spends milliseconds of CPU per
call, under the GIL. From a job's second chunk on, :class:`WorkerPool` shares the work among ``--processes``
processes (default: the instance's vCPUs): this one and ``--processes`` - 1 worker processes, each with its
own boto3 client, its own writer threads and a share of the job's concurrency limit (the
:class:`feature_store_writer.AIMD` state lives in shared memory). This process reads the CSV file in chunks
and hands each chunk, as read (raw text cells), to the process with the fewest chunks in hand -- itself
included; that process transforms it, writes it, and answers with the chunk's failed rows and counts.
Transforming where the chunk is written spreads that CPU too: sending transformed records instead would cost
more to pickle than to transform (measured: 25 us per row to unpickle records against 0.1 us for a raw
chunk, 10 to 20 us to transform).

Every chunk goes to exactly one process, and its answer is counted once: no row is written twice by the
script or forgotten. A worker that dies (killed for memory, say) takes its chunks in hand with it: their
rows are reported as not written, with the reason, never lost silently, and the others carry on. At most
:data:`TASKS_PER_PROCESS` chunks per worker, and :attr:`InProcess.capacity` for this process, are in hand
(back-pressure on the reader): memory stays flat whatever the file's size.

Start method: ``fork`` on Linux (the SageMaker containers): the workers start in milliseconds with pandas and
boto3 already imported, and the entry point may have been loaded under any module name. They are forked
while this process runs no thread of its own (its writer's threads are ended first and started again
afterwards), which is what makes fork safe ("Contexts and start methods", Python multiprocessing
documentation). Elsewhere ``spawn``.

Runs in the SageMaker scikit-learn image: pandas, boto3 and Python 3.9+ only.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import queue
import random
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait

import boto3
import pandas as pd

from feature_store_writer import AIMD, FeatureStoreWriter, Gate, Written, runtime_client, shared_aimd_state
from transform import ColumnPlan, Schema, normalised_chunk, transform_chunk

LOG = logging.getLogger("transform_and_ingest.workers")

TASKS_PER_PROCESS = 3  # chunks a worker holds: one being written, the next ones transformed and queued
STOP_TIMEOUT = 60.0  # seconds a worker gets to end once it has nothing left to write


@dataclass
class Chunk:
    """One chunk of a file to transform and write."""

    task_id: int
    source: str  # the file's URL: record identifiers derive from it
    first_row: int  # the data row number of its first row
    raw: pd.DataFrame  # the cells as read (original column names, text, empty for missing)
    plan: ColumnPlan
    event_time_now: str  # the event time of rows without one (the same for the whole file)


@dataclass
class ChunkResult:
    task_id: int
    failures: list[tuple[int, str]] = field(default_factory=list)  # (row, reason): not cast or not written
    written: int = 0
    calls: int = 0
    throttles: int = 0


@dataclass(frozen=True)
class WriterSettings:
    """What a worker process needs to write: it makes its own session, client and writer."""

    region: str
    feature_group_name: str
    max_workers: int  # concurrent write calls per process
    use_batch_write: bool


def write_chunk(chunk: Chunk, schema: Schema, writer: FeatureStoreWriter, report) -> None:
    """Transform ``chunk`` and submit its records to ``writer``; ``report(ChunkResult)`` is called once."""
    try:
        transformed = transform_chunk(normalised_chunk(chunk.raw), chunk.plan, schema, source=chunk.source,
                                      first_row=chunk.first_row, event_time_now=chunk.event_time_now)
        items = transformed.entries(writer.feature_group_name)
    except Exception as error:  # noqa: BLE001 - a bug in a transformation fails its rows, with the reason
        rows = range(chunk.first_row, chunk.first_row + len(chunk.raw))
        report(ChunkResult(chunk.task_id, [(row, f"cannot transform: {error!r}") for row in rows]))
        return

    def done(written: Written) -> None:
        report(ChunkResult(chunk.task_id, sorted(transformed.failures + written.failures), written.written,
                           written.calls, written.throttles))

    writer.submit(items, done)


class InProcess:
    """Chunks transformed in the caller's thread and written by this process's writer threads. ``wakeup`` is
    called (from a writer thread) after each result: the worker pool waits on it with the workers' pipes."""

    capacity = 2  # one being written while the next one is read and transformed

    def __init__(self, schema: Schema, writer: FeatureStoreWriter, wakeup: Callable[[], None] | None = None) -> None:
        self.schema, self.writer, self._wakeup = schema, writer, wakeup
        self.outstanding = 0
        self._results: queue.Queue[ChunkResult] = queue.Queue()

    def submit(self, chunk: Chunk) -> None:
        self.outstanding += 1
        write_chunk(chunk, self.schema, self.writer, self._report)

    def _report(self, result: ChunkResult) -> None:
        self._results.put(result)
        if self._wakeup is not None:
            self._wakeup()

    def next_result(self) -> ChunkResult:
        result = self._results.get()
        self.outstanding -= 1
        return result

    def ready_results(self) -> Iterator[ChunkResult]:
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return
            self.outstanding -= 1
            yield result

    def close(self) -> None:
        self.writer.close()


def start_method() -> str:
    return "fork" if sys.platform.startswith("linux") else "spawn"


def available_cpus() -> int:
    """The vCPUs this process may run on (the instance's, in a SageMaker processing container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class _Worker:
    index: int
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection
    tasks: dict[int, tuple[int, int]] = field(default_factory=dict)  # task id -> (first row, rows)
    alive: bool = True


class WorkerPool:
    """The main process's own writer and ``processes - 1`` worker processes, each with its own client, writer
    threads and share of the limit; every chunk goes to the one with the fewest chunks in hand."""

    def __init__(self, processes: int, schema: Schema, settings: WriterSettings,
                 local_writer: Callable[[Gate], FeatureStoreWriter], session: boto3.session.Session | None = None,
                 ) -> None:
        context = multiprocessing.get_context(start_method())
        state = shared_aimd_state(context, processes * settings.max_workers)
        self.processes = processes
        self._ready: deque[ChunkResult] = deque()
        self._stopping = False
        self._workers: list[_Worker] = []
        # A forked worker can use this process's session as it is (no thread uses it while the workers are
        # forked): its endpoint data and service models are loaded already, which saves each worker a few
        # hundred milliseconds of parsing. A spawned one makes its own.
        inherited = session if start_method() == "fork" else None
        if inherited is not None:
            # The objects of this process stay out of the workers' garbage collections: a collection would
            # write to every object's header, copying on write the pages the workers share with this process
            # ("gc.freeze", Python documentation). This process takes them back once the workers are started.
            gc.freeze()
        for index in range(1, processes):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=worker_main, name=f"ingest-worker-{index}", daemon=True,
                args=(child_end, processes, schema, settings, state, os.getpid(), inherited))
            process.start()
            child_end.close()
            self._workers.append(_Worker(index, process, parent_end))
        gc.unfreeze()
        # This process writes too, with threads started only now that the workers are forked.
        self._wakeup_in, self._wakeup_out = socket.socketpair()
        gate = Gate(AIMD(processes * settings.max_workers, processes, state=state), 1 / processes)
        self._local = InProcess(schema, local_writer(gate), wakeup=self._wake)
        self.capacity = self._local.capacity + (processes - 1) * TASKS_PER_PROCESS
        LOG.info("%d processes write (%s), %d write calls each at most", processes, start_method(),
                 settings.max_workers)

    def _wake(self) -> None:
        self._wakeup_out.send(b"!")

    @property
    def outstanding(self) -> int:
        return sum(len(worker.tasks) for worker in self._workers) + self._local.outstanding + len(self._ready)

    def submit(self, chunk: Chunk) -> None:
        live = [worker for worker in self._workers if worker.alive and len(worker.tasks) < TASKS_PER_PROCESS]
        worker = min(live, key=lambda candidate: len(candidate.tasks), default=None)
        if worker is None or self._local.outstanding < min(len(worker.tasks), self._local.capacity):
            self._local.submit(chunk)  # this process has the fewest chunks in hand (or no worker is left)
            return
        worker.tasks[chunk.task_id] = (chunk.first_row, len(chunk.raw))
        try:
            worker.connection.send(chunk)
        except OSError as error:
            self._lost(worker, f"cannot hand it a chunk: {error}")

    def next_result(self) -> ChunkResult:
        while not self._ready:
            if not self._local.outstanding and not any(w.alive and w.tasks for w in self._workers):
                raise RuntimeError("no chunk is being written: no result can come")
            self._poll(None)
        return self._ready.popleft()

    def ready_results(self) -> Iterator[ChunkResult]:
        self._poll(0)
        while self._ready:
            yield self._ready.popleft()

    def close(self) -> None:
        """Stop the workers (each ends once its writes are done) and this process's writer."""
        self._stopping = True
        for worker in self._workers:
            if worker.alive:
                with contextlib.suppress(OSError):  # gone already: the join below sees it
                    worker.connection.send(None)
        self._local.close()
        for worker in self._workers:
            worker.process.join(STOP_TIMEOUT)
            if worker.process.is_alive():
                LOG.error("worker process %d did not stop: terminated", worker.index)
                worker.process.terminate()
                worker.process.join()
            worker.connection.close()
            worker.alive = False
        self._wakeup_in.close()
        self._wakeup_out.close()

    def _poll(self, timeout: float | None) -> None:
        by_handle: dict[object, _Worker] = {}
        for worker in self._workers:
            if worker.alive:
                by_handle[worker.connection] = worker
                by_handle[worker.process.sentinel] = worker
        for handle in wait([self._wakeup_in, *by_handle], timeout):
            if handle is self._wakeup_in:  # this process's own writer has results
                self._wakeup_in.recv(4096)
                self._ready.extend(self._local.ready_results())
                continue
            worker = by_handle[handle]
            if not worker.alive:
                continue
            if handle is worker.connection:
                self._receive(worker)
            else:  # the process ended: take what it sent before, then count the rest as lost
                while worker.alive and worker.connection.poll(0):
                    self._receive(worker)
                if worker.alive:
                    worker.process.join(1)
                    self._lost(worker, f"exited with code {worker.process.exitcode}")

    def _receive(self, worker: _Worker) -> None:
        try:
            result: ChunkResult = worker.connection.recv()
        except (EOFError, OSError):
            worker.process.join(1)
            self._lost(worker, f"exited with code {worker.process.exitcode}")
            return
        worker.tasks.pop(result.task_id, None)
        self._ready.append(result)

    def _lost(self, worker: _Worker, why: str) -> None:
        worker.alive = False
        if not worker.tasks and self._stopping:
            return
        rows = sum(count for _, count in worker.tasks.values())
        LOG.error("worker process %d %s with %d chunk(s) of %d row(s) in hand: those rows are reported as not "
                  "written (they may be in part; writing them again is safe)", worker.index, why,
                  len(worker.tasks), rows)
        reason = f"not confirmed: the worker process writing it {why} (out of memory?)"
        for task_id, (first_row, count) in worker.tasks.items():
            self._ready.append(ChunkResult(task_id, [(row, reason) for row in range(first_row, first_row + count)]))
        worker.tasks.clear()


def worker_main(connection, processes: int, schema: Schema, settings: WriterSettings, state,
                parent_pid: int, session: boto3.session.Session | None = None) -> None:
    """A worker process: chunks in, results out, until the main process sends None (or is gone)."""
    random.seed()  # a forked worker starts with its parent's random state: the backoff jitter must differ
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    client = runtime_client(session or boto3.session.Session(region_name=settings.region), settings.max_workers)
    aimd = AIMD(processes * settings.max_workers, processes, state=state)
    writer = FeatureStoreWriter(client, settings.feature_group_name, max_workers=settings.max_workers,
                                use_batch_write=settings.use_batch_write, gate=Gate(aimd, 1 / processes))
    send_lock = threading.Lock()

    def report(result: ChunkResult) -> None:
        with send_lock:
            connection.send(result)

    try:
        while True:
            if not connection.poll(1.0):
                if os.getppid() != parent_pid:  # the main process is gone: nobody to report to
                    return
                continue
            chunk = connection.recv()
            if chunk is None:
                break
            write_chunk(chunk, schema, writer, report)
        writer.close()
    except (EOFError, OSError):
        return
    finally:
        connection.close()
