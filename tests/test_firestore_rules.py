"""firestore.rules against a second emulator started with them (`--rules`).

A client of Firestore's REST API is denied every read and write, whether it sends no
credentials or a Firebase-style ID token; the admin path (the emulator's
`Authorization: Bearer owner`, what the functions' service account amounts to, and
what the Python client sends to an emulator) still reads and writes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from typing import Iterator

import pytest
import requests

from tests.conftest import LOG_DIR, ROOT
from tools import localstack

PROJECT = "demo-mission-control-rules"


@pytest.fixture(scope="module")
def ruled() -> Iterator[str]:
    gcloud = localstack.check_emulator_installed()
    host = f"127.0.0.1:{localstack.free_port()}"
    log = (LOG_DIR / "firestore-rules.log").open("wb")
    process = subprocess.Popen(
        [gcloud, "emulators", "firestore", "start", f"--host-port={host}", f"--rules={ROOT / 'firestore.rules'}", "--quiet"],
        env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        localstack.wait_for_http(f"http://{host}/", 60, process)
        yield host
    finally:
        localstack.stop(process)
        log.close()


def documents(host: str) -> str:
    return f"http://{host}/v1/projects/{PROJECT}/databases/(default)/documents"


def client_token() -> str:
    """An ID token as a signed-in web client would send it (the emulator does not check signatures)."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "sub": "uid-ops", "user_id": "uid-ops",
        "email": "ops@example.com", "email_verified": True, "iat": now, "exp": now + 3600, "auth_time": now,
        "firebase": {"sign_in_provider": "password", "identities": {}},
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


CLIENTS = {"anonymous": {}, "signed-in": {"Authorization": f"Bearer {client_token()}"}}
OWNER = {"Authorization": "Bearer owner"}
FIELDS = {"fields": {"name": {"stringValue": "x"}}}


@pytest.fixture
def seeded(ruled) -> str:
    base = documents(ruled)
    response = requests.patch(f"{base}/templates/tpl-1", json=FIELDS, headers=OWNER, timeout=10)
    assert response.status_code == 200, response.text
    return base


@pytest.mark.parametrize("who", list(CLIENTS))
@pytest.mark.parametrize("path", ["templates/tpl-1", "lead_runs/r1/jobs/default", "telemetry_errors/f1"])
def test_direct_client_reads_and_writes_are_denied(seeded, who, path):
    headers = CLIENTS[who]
    assert requests.get(f"{seeded}/{path}", headers=headers, timeout=10).status_code == 403
    assert requests.patch(f"{seeded}/{path}", json=FIELDS, headers=headers, timeout=10).status_code == 403
    assert requests.delete(f"{seeded}/{path}", headers=headers, timeout=10).status_code == 403
    listed = requests.get(f"{seeded}/templates", headers=headers, timeout=10)
    assert listed.status_code == 403
    # Nothing changed: the admin path still reads the seeded document as it was.
    kept = requests.get(f"{seeded}/templates/tpl-1", headers=OWNER, timeout=10)
    assert kept.status_code == 200 and kept.json()["fields"] == FIELDS["fields"]


def test_the_admin_path_reads_and_writes(seeded, ruled, monkeypatch):
    assert requests.get(f"{seeded}/templates/tpl-1", headers=OWNER, timeout=10).status_code == 200
    created = requests.patch(f"{seeded}/lead_runs/r9", json=FIELDS, headers=OWNER, timeout=10)
    assert created.status_code == 200
    # The Python client the functions use, pointed at the ruled emulator, is not refused.
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", ruled)
    db = firestore.Client(project=PROJECT)
    db.collection("templates").document("tpl-2").set({"name": "y"})
    assert db.collection("templates").document("tpl-1").get().to_dict() == {"name": "x"}


def test_firebase_json_deploys_these_rules():
    config = json.loads((ROOT / "firebase.json").read_text())
    assert config["firestore"]["rules"] == "firestore.rules"
    assert (ROOT / config["firestore"]["rules"]).is_file()
