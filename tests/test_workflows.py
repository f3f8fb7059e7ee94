"""The GitHub Actions release path: what ci.yml and deploy.yml promise, checked on the files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def step_using(job: dict, action: str) -> dict:
    found = [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]
    assert found, f"no step uses {action}"
    return found[0]


def runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(job))


@pytest.fixture(scope="module")
def ci() -> dict:
    return load("ci.yml")


@pytest.fixture(scope="module")
def deploy() -> dict:
    return load("deploy.yml")


# --- ci.yml ----------------------------------------------------------------------


def test_ci_runs_on_pull_requests_pushes_and_for_deploy(ci):
    assert {"pull_request", "push", "workflow_call"} <= set(ci["on"])


def test_ci_runs_the_same_command_as_dot_ci_run(ci):
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)
    (job,) = ci["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    assert [s["run"] for s in steps(job) if s.get("run", "").startswith("make test")] == ["make test"]


def test_ci_sets_up_python_java_and_the_firestore_emulator(ci):
    (job,) = ci["jobs"].values()
    assert str(step_using(job, "actions/setup-python")["with"]["python-version"]) == "3.12"
    java = step_using(job, "actions/setup-java")["with"]
    assert java["distribution"] == "temurin" and str(java["java-version"]) == "21"
    gcloud = step_using(job, "google-github-actions/setup-gcloud")["with"]
    assert "cloud-firestore-emulator" in gcloud["install_components"]
    order = [s.get("uses", s.get("run", "")).split("@")[0] for s in steps(job)]
    assert order.index("google-github-actions/setup-gcloud") < order.index("make test")


# --- deploy.yml ------------------------------------------------------------------


def test_deploy_runs_on_main_only(deploy):
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in deploy["on"]
    assert deploy["jobs"]["deploy"]["if"] == "github.ref == 'refs/heads/main'"


def test_two_deploys_never_overlap(deploy):
    assert deploy["concurrency"] == {"group": "deploy-main", "cancel-in-progress": False}


def test_deploy_waits_for_the_test_suite(deploy):
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    assert deploy["jobs"]["deploy"]["needs"] == "test"


def test_deploy_authenticates_with_workload_identity_from_variables(deploy):
    job = deploy["jobs"]["deploy"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    auth = step_using(job, "google-github-actions/auth")["with"]
    assert auth["workload_identity_provider"] == "${{ vars.GCP_WIF_PROVIDER }}"
    assert auth["service_account"] == "${{ vars.GCP_DEPLOY_SA }}"
    assert "credentials_json" not in auth


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_no_secret_is_used_anywhere(name):
    text = (WORKFLOWS / name).read_text()
    assert "secrets." not in text and "credentials_json" not in text and "private_key" not in text


def test_deploy_order_functions_then_hosting_then_smoke(deploy):
    job = deploy["jobs"]["deploy"]
    script = runs(job)
    positions = [script.index(marker) for marker in ("./deploy.sh", "firebase-tools", "scripts/smoke ")]
    assert positions == sorted(positions)
    assert "deploy --only hosting,firestore:indexes" in script
    auth_index = next(i for i, s in enumerate(steps(job)) if "google-github-actions/auth" in s.get("uses", ""))
    deploy_index = next(i for i, s in enumerate(steps(job)) if s.get("run") == "./deploy.sh")
    assert auth_index < deploy_index


def test_smoke_expects_the_version_deploy_sh_stamps(deploy):
    stamp = re.search(r"git -C \"\$root\" rev-parse (--short=\d+) HEAD", (ROOT / "deploy.sh").read_text())
    assert stamp, "deploy.sh no longer stamps the version the way this test expects"
    script = runs(deploy["jobs"]["deploy"])
    assert f"git rev-parse {stamp.group(1)} HEAD" in script
    assert '--expect-version "$version"' in script


def test_the_env_file_step_writes_what_deploy_sh_accepts(deploy, tmp_path):
    """Run the workflow's own env-file step, then deploy.sh's dry run on what it wrote."""
    (step,) = [s for s in steps(deploy["jobs"]["deploy"]) if s.get("name", "").startswith("Write deploy.env.yaml")]
    assert step["shell"] == "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "ALLOWED_", "WORKER_", "EMAIL_", "GMAIL_"))}
    env.update({name: "" for name in step["env"]})  # unset repository variables arrive as ""
    env.update({
        "GOOGLE_CLOUD_PROJECT": "acme-ops",
        "REGION": "us-central1",
        "HOSTING_URL": "https://acme-ops.web.app",
        "AUTH_ALLOWED_DOMAINS": "acme.example",
        "AUTH_ALLOWED_EMAILS": 'odd"name@acme.example: #x',
    })
    result = subprocess.run([sys.executable, "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load((tmp_path / "deploy.env.yaml").read_text())
    assert written == {
        "GOOGLE_CLOUD_PROJECT": "acme-ops",
        "REGION": "us-central1",
        "AUTH_MODE": "firebase",
        "ALLOWED_ORIGINS": "https://acme-ops.web.app,https://acme-ops.firebaseapp.com",
        "WORKER_URL": "https://acme-ops.web.app",
        "AUTH_ALLOWED_DOMAINS": "acme.example",
        "AUTH_ALLOWED_EMAILS": 'odd"name@acme.example: #x',
    }
    build = tmp_path / "build"
    dry_run = subprocess.run(
        [str(ROOT / "deploy.sh"), "--dry-run", "--env-file", str(tmp_path / "deploy.env.yaml"), "receipts"],
        env={**env, "DEPLOY_BUILD_DIR": str(build)},
        capture_output=True,
        text=True,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    stamped = yaml.safe_load((build / "env.yaml").read_text())
    assert stamped["AUTH_MODE"] == "firebase" and stamped["BUILD_VERSION"]


# --- both ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_every_action_is_pinned_to_a_release(name):
    uses = re.findall(r"uses:\s*(\S+)", (WORKFLOWS / name).read_text())
    for ref in uses:
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", ref), ref


def test_scripts_are_executable():
    for script in ("scripts/smoke", "scripts/smoke-id-token"):
        assert os.access(ROOT / script, os.X_OK), script


def test_make_test_runs_the_linter_first():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\blint\b", makefile, re.M)
    assert re.search(r"^lint: .*\n\t.*actionlint .*\.github/workflows", makefile, re.M)


def test_workflows_pass_actionlint():
    result = subprocess.run(lint_command(WORKFLOWS.glob("*.yml")), cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_catch_mistakes(tmp_path):
    """Guards against a linter that silently checks nothing (a wrong path, a broken install)."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ vars.X }} ${{ secret.Y }}\n      - run: cd $HOME/a b\n"
    )
    result = subprocess.run(lint_command([bad]), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert 'undefined variable "secret"' in result.stdout
    assert "SC2086" in result.stdout  # shellcheck runs on `run:` scripts too


def lint_command(files) -> list[str]:
    shellcheck = ACTIONLINT.parent / "shellcheck"
    pyflakes = ACTIONLINT.parent / "pyflakes"
    if not ACTIONLINT.exists():
        pytest.fail(f"actionlint is not installed in {ACTIONLINT.parent} (pip install -r requirements-dev.txt)")
    assert shutil.which(str(shellcheck)) and shutil.which(str(pyflakes))
    return [str(ACTIONLINT), "-no-color", "-oneline", f"-shellcheck={shellcheck}", f"-pyflakes={pyflakes}", *map(str, files)]
