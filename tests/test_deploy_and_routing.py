"""deploy.sh's dry run, firebase.json's routes and the per-function requirements."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tools.localstack import HostingConfig, function_names

FUNCTIONS = ["consent", "jobs", "receipts", "review", "schedule", "senders", "telemetry", "templates", "worker"]

# Every path of the HTTP API (docs/, public/api/openapi.json), as the browser sends it, and who must serve it.
SPEC_ROUTES = [
    ("/api/lead-runs", "receipts"),
    ("/api/lead-runs/run-1/receipts", "receipts"),
    ("/api/health", "receipts"),
    ("/api/calendar/schedule", "schedule"),
    ("/api/lead-runs/run-1/jobs", "jobs"),
    ("/api/lead-runs/run-1/jobs/worker", "worker"),
    ("/api/templates", "templates"),
    ("/api/templates/tpl-1", "templates"),
    ("/api/senders", "senders"),
    ("/api/senders/mailbox-1", "senders"),
    ("/api/telemetry/error", "telemetry"),
    ("/api/suppressions", "consent"),
    ("/api/suppressions:import", "consent"),
    ("/api/suppressions/abc123", "consent"),
    ("/u/tok123", "consent"),
    ("/api/lead-runs/run-1/drafts", "review"),
    ("/api/lead-runs/run-1/drafts:send", "review"),
    ("/api/lead-runs/run-1/drafts/lead-000001", "review"),
    ("/api/lead-runs/run-1/drafts/lead-000001:send", "review"),
    ("/api/lead-runs/run-1/leads/lead-000001:retry", "review"),
]


def deploy(*args, build_dir):
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_CLOUD_PROJECT"}
    env["DEPLOY_BUILD_DIR"] = str(build_dir)
    return subprocess.run([str(ROOT / "deploy.sh"), *args], capture_output=True, text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def dry_run_output(build_dir):
    result = deploy("--dry-run", build_dir=build_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.fixture(scope="module")
def dry_run(dry_run_output):
    return [shlex.split(line) for line in dry_run_output if line.startswith("gcloud functions ")]


def test_a_full_deploy_deploys_firestore_rules_indexes_and_ttl_policies(dry_run_output):
    firestore = [line for line in dry_run_output if not line.startswith("gcloud functions ")]
    assert any(" deploy --only firestore:rules,firestore:indexes " in line and "firebase" in line for line in firestore)
    ttl = [shlex.split(line) for line in firestore if line.startswith("gcloud firestore fields ttls update expireAt ")]
    groups = sorted(arg.split("=", 1)[1] for cmd in ttl for arg in cmd if arg.startswith("--collection-group="))
    assert groups == ["events", "folds", "telemetry_rate_limits"]
    assert all("--enable-ttl" in cmd for cmd in ttl)


def test_dry_run_deploys_six_gen2_functions(dry_run):
    assert sorted(cmd[3] for cmd in dry_run) == FUNCTIONS
    for cmd in dry_run:
        assert cmd[:3] == ["gcloud", "functions", "deploy"]
        for flag in ["--gen2", "--runtime=python312", "--trigger-http", "--allow-unauthenticated", f"--entry-point={cmd[3]}"]:
            assert flag in cmd
        assert any(a.startswith("--env-vars-file=") for a in cmd)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_staging_dir_imports_alone(dry_run, build_dir, name):
    stage = build_dir / name
    assert (stage / "shared" / "http.py").is_file() and (stage / "requirements.txt").is_file()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # `python -c` puts only the cwd on sys.path: both imports must come from the staging dir.
    code = "import sys, main, shared; assert all(m.__file__.startswith(sys.argv[1]) for m in (main, shared))"
    result = subprocess.run([sys.executable, "-c", code, str(stage)], cwd=stage, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_one_function_can_deploy_alone(tmp_path):
    result = deploy("--dry-run", "worker", build_dir=tmp_path)
    assert result.returncode == 0
    assert [line.split()[3] for line in result.stdout.splitlines()] == ["worker"]


def test_deploy_refuses_auth_off(tmp_path):
    env_file = tmp_path / "env.yaml"
    env_file.write_text('AUTH_MODE: "off"\n')
    result = deploy("--dry-run", "--env-file", str(env_file), build_dir=tmp_path / "build")
    assert result.returncode == 1 and "AUTH_MODE=off" in result.stderr


@pytest.mark.parametrize("line", [
    "AUTH_MODE: off", "AUTH_MODE: 'off'", 'AUTH_MODE: " off "', "AUTH_MODE : OFF", "  auth_mode:Off  # local",
    '"AUTH_MODE": "off"', "AUTH_MODE: ' Off'",
])
def test_deploy_refuses_auth_off_in_any_spelling(tmp_path, line):
    env_file = tmp_path / "env.yaml"
    env_file.write_text(f"GOOGLE_CLOUD_PROJECT_X: a\n{line}\n")
    result = deploy("--dry-run", "--env-file", str(env_file), build_dir=tmp_path / "build")
    assert result.returncode == 1 and "AUTH_MODE=off" in result.stderr, (line, result.stderr)


@pytest.mark.parametrize("line", ["AUTH_MODE: firebase", "AUTH_MODE: offline", "# AUTH_MODE: off"])
def test_deploy_accepts_auth_modes_that_are_not_off(tmp_path, line):
    env_file = tmp_path / "env.yaml"
    env_file.write_text(f"{line}\n")
    result = deploy("--dry-run", "--env-file", str(env_file), build_dir=tmp_path / "build")
    assert result.returncode == 0, (line, result.stderr)


def test_version_is_stamped_into_the_environment(dry_run, build_dir):
    stamped = (build_dir / "env.yaml").read_text()
    assert "BUILD_VERSION:" in stamped


@pytest.mark.parametrize("path, function", SPEC_ROUTES)
def test_every_spec_route_resolves_to_its_function(path, function):
    assert HostingConfig.load().function_for(path) == function


def test_static_paths_are_not_rewritten():
    config = HostingConfig.load()
    assert config.function_for("/") is None and config.function_for("/app.js") is None
    assert config.public == ROOT / "public"


def test_rewrites_name_a_region_and_existing_functions():
    rewrites = json.loads((ROOT / "firebase.json").read_text())["hosting"]["rewrites"]
    assert all(r["function"]["region"] for r in rewrites)
    assert function_names() == FUNCTIONS
    assert json.loads((ROOT / "firebase.json").read_text())["firestore"]["indexes"] == "firestore.indexes.json"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_requirements_match_the_runtime_list(name):
    def pins(path):
        return sorted(l.strip() for l in path.read_text().splitlines() if l.strip() and not l.startswith("#"))

    assert pins(ROOT / "functions" / name / "requirements.txt") == pins(ROOT / "requirements.txt")
