"""lead_runs/{runId} and everything under it: the paths and document shapes of runs,
leads, action receipts and the job (docs/data-model.md).

Nothing outside this module builds one of these paths.
"""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any, Iterable, Iterator, TypeVar

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.store.client import as_dict, commit_args, read_args, read_masked_strings  # as_dict is also read as runs.as_dict by the other stores

if TYPE_CHECKING:
    from google.cloud import firestore

T = TypeVar("T")

RUNS = "lead_runs"
LEADS = "leads"
ACTIONS = "actions"
JOBS = "jobs"
DEFAULT_JOB = "default"
LEASES = "leases"

LEAD_STATUSES = ("pending", "sent", "drafted", "failed", "skipped")
# Firestore commits at most 500 writes; lead creation and retry resets go in chunks of this.
WRITE_CHUNK = 500
COMMIT_THREADS = 4


def runs(db: "firestore.Client") -> "firestore.CollectionReference":
    return db.collection(RUNS)


def run_ref(db: "firestore.Client", run_id: str) -> "firestore.DocumentReference":
    return db.collection(RUNS).document(run_id)


def leads(db: "firestore.Client", run_id: str) -> "firestore.CollectionReference":
    return run_ref(db, run_id).collection(LEADS)


def lead_ref(db: "firestore.Client", run_id: str, lead_id: str) -> "firestore.DocumentReference":
    return leads(db, run_id).document(lead_id)


def actions(db: "firestore.Client", run_id: str, lead_id: str) -> "firestore.CollectionReference":
    return lead_ref(db, run_id, lead_id).collection(ACTIONS)


def action_ref(
    db: "firestore.Client", run_id: str, lead_id: str, action_id: str
) -> "firestore.DocumentReference":
    return actions(db, run_id, lead_id).document(action_id)


def job_ref(db: "firestore.Client", run_id: str) -> "firestore.DocumentReference":
    return run_ref(db, run_id).collection(JOBS).document(DEFAULT_JOB)


def lease_claim_ref(db: "firestore.Client", run_id: str, lease_id: str) -> "firestore.DocumentReference":
    """jobs/default/leases/{leaseId}: created once by the worker that takes a hand-off."""
    return job_ref(db, run_id).collection(LEASES).document(lease_id)


# --- ids ------------------------------------------------------------------------


def lead_doc_id(index: int) -> str:
    """Deterministic, and sorts in processing order: lead-000042."""
    return f"lead-{index:06d}"


def idempotency_key(run_id: str, lead_id: str, step: str) -> str:
    return f"{run_id}:{lead_id}:{step}"


# --- reads ----------------------------------------------------------------------


def get_run(db: "firestore.Client", run_id: str) -> dict[str, Any] | None:
    return as_dict(run_ref(db, run_id).get(**read_args()))


def get_job(db: "firestore.Client", run_id: str) -> dict[str, Any] | None:
    return as_dict(job_ref(db, run_id).get(**read_args()))


def get_run_and_job(
    db: "firestore.Client", run_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    refs = [run_ref(db, run_id), job_ref(db, run_id)]
    found = {s.reference.path: as_dict(s) for s in db.get_all(refs, **read_args())}
    return found.get(refs[0].path), found.get(refs[1].path)


CONTROL_FIELDS = ("status", "lease.owner")


def read_job_control(db: "firestore.Client", run_id: str) -> dict[str, Any] | None:
    """Only the job's `status` and `lease.owner`: {"status", "lease": {"owner"} or None}.

    The worker asks before every lead (that is how a pause stops it within one lead), so
    the read is masked to these two fields, unary (client.read_masked_strings), and the
    leads in flight share one (jobs/lease.ControlReads).
    """
    fields = read_masked_strings(db, job_ref(db, run_id), CONTROL_FIELDS)
    if fields is None:
        return None
    owner = fields["lease.owner"]
    return {"status": fields["status"], "lease": {"owner": owner} if owner else None}


def read_leads(db: "firestore.Client", run_id: str, start: int, count: int) -> list[dict[str, Any]]:
    """Leads start..start+count-1 in index order, by key (no query: ids are deterministic)."""
    refs = [lead_ref(db, run_id, lead_doc_id(i)) for i in range(start, start + count)]
    found = [as_dict(s) for s in db.get_all(refs, **read_args())]
    return sorted((d for d in found if d is not None), key=lambda d: d["index"])


def get_lead(db: "firestore.Client", run_id: str, lead_id: str) -> dict[str, Any] | None:
    return as_dict(lead_ref(db, run_id, lead_id).get(**read_args()))


def leads_with_status(db: "firestore.Client", run_id: str, status: str) -> Iterator[dict[str, Any]]:
    query = leads(db, run_id).where(filter=FieldFilter("status", "==", status))
    for snapshot in query.stream(**read_args()):
        yield as_dict(snapshot)


def count_leads(db: "firestore.Client", run_id: str) -> dict[str, int]:
    """Lead counts by status from aggregation queries (reads index entries, not documents),
    all five at once: one round trip of latency instead of five."""

    def count(status: str) -> int:
        result = leads(db, run_id).where(filter=FieldFilter("status", "==", status)).count().get(**read_args())
        return int(result[0][0].value)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(LEAD_STATUSES)) as pool:
        return dict(zip(LEAD_STATUSES, pool.map(count, LEAD_STATUSES)))


# --- writes ---------------------------------------------------------------------


def write_leads(db: "firestore.Client", run_id: str, docs: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """set() of every (leadDocId, fields), in commits of WRITE_CHUNK; re-running rewrites the same ids.

    Commits run on a few threads while the next chunk is being built (building the
    protobufs is most of the time on big runs); any failed commit raises here.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=COMMIT_THREADS) as pool:
        futures, batch, pending = [], db.batch(), 0
        for lead_id, fields in docs:
            batch.set(lead_ref(db, run_id, lead_id), fields)
            pending += 1
            if pending == WRITE_CHUNK:
                futures.append(pool.submit(batch.commit))
                batch, pending = db.batch(), 0
        if pending:
            futures.append(pool.submit(batch.commit))
        for future in futures:
            future.result()


def create_missing_leads(db: "firestore.Client", run_id: str, docs: list[tuple[str, dict[str, Any]]]) -> int:
    """create() of every (leadDocId, fields) that does not exist yet, in commits of WRITE_CHUNK
    on a few threads; how many it created. An existing lead is never overwritten (a worker
    may have done it): a chunk that meets one is read back and only its missing leads are
    created."""

    def create_chunk(chunk: list[tuple[str, dict[str, Any]]]) -> int:
        while chunk:
            batch = db.batch()
            for lead_id, fields in chunk:
                batch.create(lead_ref(db, run_id, lead_id), fields)
            try:
                batch.commit(**commit_args())
                return len(chunk)
            except gexc.AlreadyExists:
                refs = [lead_ref(db, run_id, lead_id) for lead_id, _ in chunk]
                existing = {s.id for s in db.get_all(refs, **read_args()) if s.exists}
                chunk = [(lead_id, fields) for lead_id, fields in chunk if lead_id not in existing]
        return 0

    chunks = [docs[first:first + WRITE_CHUNK] for first in range(0, len(docs), WRITE_CHUNK)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=COMMIT_THREADS) as pool:
        return sum(pool.map(create_chunk, chunks))


def update_leads(db: "firestore.Client", run_id: str, lead_ids: Iterable[str], fields: dict[str, Any]) -> int:
    batch, pending, total = db.batch(), 0, 0
    for lead_id in lead_ids:
        batch.update(lead_ref(db, run_id, lead_id), fields)
        pending += 1
        total += 1
        if pending == WRITE_CHUNK:
            batch.commit(**commit_args())
            batch, pending = db.batch(), 0
    if pending:
        batch.commit(**commit_args())
    return total
