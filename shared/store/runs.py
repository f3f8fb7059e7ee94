"""Paths of lead runs and everything under them (SPEC.md "Firestore data model")."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import firestore

RUNS = "lead_runs"
LEADS = "leads"
ACTIONS = "actions"
JOBS = "jobs"
DEFAULT_JOB = "default"


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
