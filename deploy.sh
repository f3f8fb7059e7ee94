#!/usr/bin/env bash
# Deploys every function (or the ones named) as a 2nd gen Cloud Function; a full
# deploy (no function named) also deploys Firestore's rules, indexes and TTL policies.
#
# Each function deploys from a staging copy of its folder with shared/ vendored
# beside main.py, built fresh under build/deploy/ (git-ignored); nothing is
# copied into functions/ itself.
#
#   ./deploy.sh [--dry-run] [--env-file FILE] [FUNCTION ...]
#
# --dry-run builds the staging dirs and prints the exact gcloud commands without
# running them. Configuration: GOOGLE_CLOUD_PROJECT, REGION (default us-central1),
# and the functions' environment in a YAML file (default deploy.env.yaml; see
# deploy.env.example.yaml). The build's git commit is stamped in as BUILD_VERSION.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
all_functions=(receipts schedule jobs worker templates telemetry senders consent review)
dry_run=false
env_file="${DEPLOY_ENV_FILE:-$root/deploy.env.yaml}"
selected=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --env-file) env_file="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) selected+=("$1") ;;
  esac
  shift
done
full_deploy=false
[[ ${#selected[@]} -gt 0 ]] || { selected=("${all_functions[@]}"); full_deploy=true; }

for name in "${selected[@]}"; do
  if [[ ! " ${all_functions[*]} " =~ " ${name} " ]]; then
    echo "unknown function: $name (one of: ${all_functions[*]})" >&2; exit 2
  fi
done

if $dry_run; then
  project="${GOOGLE_CLOUD_PROJECT:-demo-mission-control}"
else
  project="${GOOGLE_CLOUD_PROJECT:?set GOOGLE_CLOUD_PROJECT to the project to deploy to}"
fi
region="${REGION:-us-central1}"
version="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
build="${DEPLOY_BUILD_DIR:-$root/build/deploy}"

rm -rf "$build"
mkdir -p "$build"

# The environment every function gets: the operator's file plus the build's version.
# Auth is enforced in code; a deploy never switches it off.
if [[ -f "$env_file" ]]; then
  # Any spelling YAML reads as "off": quoted or not, any case, spaces inside the quotes.
  if grep -Eiq "^[[:space:]]*[\"']?AUTH_MODE[\"']?[[:space:]]*:[[:space:]]*[\"']?[[:space:]]*off[[:space:]]*[\"']?[[:space:]]*(#.*)?\$" "$env_file"; then
    echo "refusing to deploy with AUTH_MODE=off ($env_file)" >&2; exit 1
  fi
  grep -v '^[[:space:]]*BUILD_VERSION[[:space:]]*:' "$env_file" > "$build/env.yaml" || true
elif ! $dry_run; then
  echo "missing $env_file (copy deploy.env.example.yaml and fill it in)" >&2; exit 1
else
  : > "$build/env.yaml"
fi
printf 'BUILD_VERSION: "%s"\n' "$version" >> "$build/env.yaml"
# The jobs chain (docs/reliability.md "The sweeper"): hand-offs go to the worker function's
# own URL, never Hosting's (which cuts a request at 60 s); the sweeper accepts Scheduler's
# token for this audience and account. A value in the env file wins.
worker_base="https://${region}-${project}.cloudfunctions.net/worker"
sweeper_sa="${SWEEPER_SERVICE_ACCOUNT:-mission-control-sweeper@${project}.iam.gserviceaccount.com}"
grep -q '^[[:space:]]*WORKER_URL[[:space:]]*:' "$build/env.yaml" && sed -i '/^[[:space:]]*WORKER_URL[[:space:]]*:/d' "$build/env.yaml"
printf 'WORKER_URL: "%s"\n' "$worker_base" >> "$build/env.yaml"
grep -q '^[[:space:]]*SWEEPER_AUDIENCE[[:space:]]*:' "$build/env.yaml" \
  || printf 'SWEEPER_AUDIENCE: "%s/api/jobs/sweep"\n' "$worker_base" >> "$build/env.yaml"
grep -q '^[[:space:]]*SWEEPER_SERVICE_ACCOUNT[[:space:]]*:' "$build/env.yaml" \
  || printf 'SWEEPER_SERVICE_ACCOUNT: "%s"\n' "$sweeper_sa" >> "$build/env.yaml"

flags_for() {
  case "$1" in
    # The worker holds a lease for its whole batch; give it room beyond its time budget.
    worker) echo "--timeout=300 --memory=512Mi --concurrency=1" ;;
    jobs) echo "--timeout=120 --memory=512Mi" ;;
    *) echo "--timeout=60 --memory=256Mi" ;;
  esac
}

for name in "${selected[@]}"; do
  stage="$build/$name"
  mkdir -p "$stage"
  cp "$root/functions/$name/main.py" "$root/functions/$name/requirements.txt" "$stage/"
  cp -R "$root/shared" "$stage/shared"
  find "$stage" -name '__pycache__' -type d -prune -exec rm -rf {} +

  # shellcheck disable=SC2046
  cmd=(gcloud functions deploy "$name" --gen2 --runtime=python312 --region="$region"
       --project="$project" --source="$stage" --entry-point="$name" --trigger-http
       --allow-unauthenticated --env-vars-file="$build/env.yaml" $(flags_for "$name"))
  if $dry_run; then
    printf '%q ' "${cmd[@]}"; echo
  else
    echo "deploying $name ($version)…"
    "${cmd[@]}"
  fi
done

# Firestore: the rules (deny every direct client), the indexes, and a TTL policy on
# `expireAt` for every collection group of per-request documents (docs/telemetry.md).
ttl_groups=(events folds telemetry_rate_limits)
if $full_deploy; then
  # The same Firebase CLI release the release workflow pins, unless one is installed.
  firebase_cli="firebase"
  command -v firebase >/dev/null 2>&1 || firebase_cli="npx --yes firebase-tools@15.34.2"
  firestore_cmds=("$firebase_cli deploy --only firestore:rules,firestore:indexes --project=$project --non-interactive")
  for group in "${ttl_groups[@]}"; do
    firestore_cmds+=("gcloud firestore fields ttls update expireAt --collection-group=$group --enable-ttl --project=$project --async --quiet")
  done
  for cmd in "${firestore_cmds[@]}"; do
    if $dry_run; then
      echo "$cmd"
    else
      echo "configuring Firestore: $cmd"
      (cd "$root" && $cmd)
    fi
  done
fi
# --- the jobs chain: the sweeper's Scheduler job and the lease-claim TTL ------------------
# Cloud Scheduler POSTs /api/jobs/sweep every minute with an OIDC token for the sweeper's
# service account (audience: SWEEPER_AUDIENCE); hand-off claim documents
# (jobs/default/leases/*) are deleted by a TTL policy on `expireAt` (docs/jobs.md).
if [[ " ${selected[*]} " =~ " worker " ]]; then
  # A dry run lists these on stderr: stdout stays the function deploys, one a line.
  run() { if $dry_run; then { printf '%q ' "$@"; echo; } >&2; else "$@"; fi; }
  audience="$(sed -n 's/^[[:space:]]*SWEEPER_AUDIENCE[[:space:]]*:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$build/env.yaml" | tail -1)"
  sweeper_sa="$(sed -n 's/^[[:space:]]*SWEEPER_SERVICE_ACCOUNT[[:space:]]*:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$build/env.yaml" | tail -1)"
  if ! $dry_run && ! gcloud iam service-accounts describe "$sweeper_sa" --project="$project" >/dev/null 2>&1; then
    run gcloud iam service-accounts create "${sweeper_sa%%@*}" --project="$project" \
      --display-name="Mission Control sweeper (Cloud Scheduler)"
  fi
  # The function is public (it checks the token itself); the binding lets the account
  # invoke it if that is ever turned off.
  run gcloud functions add-invoker-policy-binding worker --region="$region" --project="$project" \
    --member="serviceAccount:$sweeper_sa"
  scheduler_args=(--location="$region" --project="$project" --schedule="* * * * *" --uri="$worker_base/api/jobs/sweep"
                  --http-method=POST --oidc-service-account-email="$sweeper_sa" --oidc-token-audience="$audience"
                  --attempt-deadline=120s)
  if ! $dry_run && gcloud scheduler jobs describe mission-control-sweeper --location="$region" --project="$project" >/dev/null 2>&1; then
    run gcloud scheduler jobs update http mission-control-sweeper "${scheduler_args[@]}"
  else
    run gcloud scheduler jobs create http mission-control-sweeper "${scheduler_args[@]}"
  fi
  run gcloud firestore fields ttls update expireAt --collection-group=leases --enable-ttl --project="$project"
fi
