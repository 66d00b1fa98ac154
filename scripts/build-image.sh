#!/usr/bin/env bash
# Build the trajops image with podman from deploy/Containerfile, offline-capable.
#
#   scripts/build-image.sh [--variant cpu|gpu] [--tag IMAGE] [--base IMAGE] [--no-wheelhouse]
#   scripts/build-image.sh --extras LIST [--app-image IMAGE] [--tag IMAGE]
#   scripts/build-image.sh --service postgres|redis|nginx|prometheus [--tag IMAGE]
#
# --extras layers optional dependencies of the trajops package (comma-separated) on the serve
# image (--app-image, default localhost/trajops:latest, built first when absent) with
# deploy/images/extras/Containerfile: `--extras dashboard` makes localhost/trajops-dashboard:latest
# and `--extras airflow` localhost/trajops-airflow:latest (compose's dashboard and airflow), each
# only the extra's packages on top of the serve image's layers.
# --service builds one of the compose stack's third-party services from
# deploy/images/NAME/Containerfile on the same local Debian base (Debian's packages, no
# registry pull), tagged localhost/trajops-NAME:latest unless --tag says otherwise; compose uses
# them through POSTGRES_IMAGE, REDIS_IMAGE, NGINX_IMAGE and PROMETHEUS_IMAGE.
# Without --base, the base image is a local Debian bookworm (debootstrap --variant=minbase, with
# python3 + python3-venv), imported once as localhost/debian-local:bookworm and reused. The
# Python dependencies come from a wheelhouse built on this host with `pip wheel` under
# build/container/wheelhouse (rebuilt only when pyproject.toml changes), so the image builds
# with no registry and no download of a multi-GB CUDA torch; pip on this host resolves torch
# from wherever its config says (find-links, extra index). The host CA bundle is passed to the
# build as the `ca_bundle` secret for builds that do reach an index through an intercepting
# proxy. --no-wheelhouse builds against the package indexes instead (the GPU variant, which
# needs a CUDA torch from the PyTorch index, always does).
#
# Environment: CONTAINERS_CONF (default deploy/containers.conf), DEBIAN_MIRROR (default: the
# first Debian URI apt uses here), PYTHON (default python3.11; must match the base's Python),
# TRAJOPS_BUILD_CACHE (default build/container), TORCH_INDEX_URL (where the GPU variant's
# torch comes from; the default is PyTorch's cu126 index, https://pypi.org/simple takes PyPI's
# torch, a CUDA build whose CUDA libraries are PyPI wheels too).
set -euo pipefail
cd "$(dirname "$0")/.."

variant=cpu
tag=localhost/trajops:latest
base=""
use_wheelhouse=1
service=""
extras=""
app_image=localhost/trajops:latest
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --no-wheelhouse) use_wheelhouse=0; shift ;;
    --service) service="$2"; shift 2 ;;
    --extras) extras="$2"; shift 2 ;;
    --app-image) app_image="$2"; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$variant" in
  cpu|gpu) ;;
  *) echo "build-image: --variant must be cpu or gpu, not '$variant'" >&2; exit 2 ;;
esac
[ "$variant" = gpu ] && use_wheelhouse=0
if [ -n "$service" ] && { [ "$service" = extras ] || [ ! -f "deploy/images/$service/Containerfile" ]; }; then
  echo "build-image: --service must be one of: $(ls deploy/images | grep -vx extras | tr '\n' ' ')(not '$service')" >&2
  exit 2
fi

export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/containers.conf}"
cache="${TRAJOPS_BUILD_CACHE:-build/container}"
python="${PYTHON:-python3.11}"
local_base=localhost/debian-local:bookworm
ca_bundle=/etc/ssl/certs/ca-certificates.crt
mkdir -p "$cache"

step() { printf '[build-image %4ss] %s\n' "$SECONDS" "$*"; }

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 |
    awk '{print $2}')
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb .*/debian/? ' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

build_local_base() {
  if podman image exists "$local_base"; then
    step "base image $local_base cached"
    return
  fi
  local rootfs="$cache/rootfs"
  rm -rf "$rootfs"
  step "debootstrap bookworm from $(debian_mirror) (about 40 s)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$(debian_mirror)" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --quiet - "$local_base" >/dev/null
  rm -rf "$rootfs"
  step "imported $local_base"
}

# The base's marker environment (its Python may differ from the host's), or "" without Python.
target_environment() {
  podman run --rm --network none -v "$PWD/deploy/wheelhouse_missing.py:/tmp/w.py:ro" \
    --entrypoint python3 "$1" /tmp/w.py --environment 2>/dev/null || true
}

# What the image build installs besides the dependencies (cyclonedx-bom: the SBOM stage).
build_tools=("setuptools>=68" wheel "cyclonedx-bom>=7")

build_wheelhouse() {
  local wheels="$cache/wheelhouse${extras:+-${extras//,/-}}" target key round extra
  target=$(target_environment "$1")
  # keyed on what it holds: the dependency list (not all of pyproject.toml), both Pythons
  key=$( ("$python" -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))
extras = [e for e in "'"$extras"'".split(",") if e]
print(d["project"]["dependencies"], d["build-system"]["requires"],
      [d["project"]["optional-dependencies"][e] for e in extras])'
    "$python" --version; echo "$target" "${build_tools[*]}") | sha256sum | cut -c1-16)
  if [ -f "$wheels/.key" ] && [ "$(cat "$wheels/.key")" = "$key" ]; then
    step "wheelhouse $wheels cached ($(find "$wheels" -name '*.whl' | wc -l) wheels)"
    return
  fi
  rm -rf "$wheels"
  mkdir -p "$wheels"
  step "pip wheel: dependencies into $wheels"
  "$python" -m pip wheel --quiet --wheel-dir "$wheels" ".${extras:+[$extras]}" "${build_tools[@]}" 2>&1 |
    grep -v "^WARNING: Location '.*' is ignored" >&2 || true
  compgen -G "$wheels/trajops-*.whl" >/dev/null || { echo "build-image: pip wheel failed" >&2; exit 1; }
  rm -f "$wheels"/trajops-*.whl # the image builds its own from the sources
  # pip resolved markers for the host's Python: add what the base's Python needs besides.
  if [ -n "$target" ]; then
    for round in 1 2 3; do
      mapfile -t extra < <("$python" deploy/wheelhouse_missing.py "$wheels" pyproject.toml "$target")
      [ ${#extra[@]} -eq 0 ] && break
      step "pip wheel for the base's Python (round $round): ${extra[*]}"
      "$python" -m pip wheel --quiet --wheel-dir "$wheels" "${extra[@]}" 2>&1 |
        grep -v "^WARNING: Location '.*' is ignored" >&2 || true
    done
  else
    step "warning: $1 has no python3 to ask; the wheelhouse follows the host's Python"
  fi
  echo "$key" >"$wheels/.key"
  step "wheelhouse ready ($(find "$wheels" -name '*.whl' | wc -l) wheels, $(du -sh "$wheels" | cut -f1))"
}

# The image's size, printed by every build (the serve image's goal is <= 1 GB: docs/deployment.md).
report_size() {
  local bytes
  bytes=$(podman image inspect --format '{{.Size}}' "$1")
  step "image $1: $((bytes / 1000000)) MB"
}

if [ -n "$service" ]; then
  [ "$tag" = localhost/trajops:latest ] && tag="localhost/trajops-$service:latest"
  if [ -z "$base" ]; then
    build_local_base
    base="$local_base"
  fi
  step "podman build deploy/images/$service on $base"
  podman build --format docker --build-arg "BASE_IMAGE=$base" -t "$tag" "deploy/images/$service"
  report_size "$tag"
  exit 0
fi

# The SBOM the build wrote into the image (deploy/Containerfile, stage sbom), next to the cache.
copy_sbom() {
  local sbom
  sbom="$cache/sbom/$(echo "$1" | tr '/:' '__').cdx.json"
  mkdir -p "$cache/sbom"
  podman run --rm --network none --entrypoint cat "$1" /opt/trajops/share/sbom/trajops.cdx.json >"$sbom"
  step "SBOM $sbom ($("$python" -c 'import json, sys
print(len(json.load(open(sys.argv[1]))["components"]))' "$sbom") components)"
}

if [ -n "$extras" ]; then
  [ "$tag" = localhost/trajops:latest ] && tag="localhost/trajops-${extras//,/-}:latest"
  requirements=$("$python" -c 'import sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
asked = sys.argv[1].split(",")
if unknown := [e for e in asked if e not in extras]:
    sys.exit(f"build-image: no extra {unknown} in pyproject.toml (it has {sorted(extras)})")
print(" ".join(r for e in asked for r in extras[e]))' "$extras")
  if ! podman image exists "$app_image"; then
    step "serve image $app_image absent: building it first"
    bash "$0" --tag "$app_image" ${base:+--base "$base"}
  fi
  build_wheelhouse "$app_image"
  args=(--format docker -f deploy/images/extras/Containerfile -t "$tag"
    --build-arg "APP_IMAGE=$app_image" --build-arg "REQUIREMENTS=$requirements"
    --build-arg "WHEELHOUSE=$cache/wheelhouse-${extras//,/-}")
  step "podman build ${args[*]} ."
  podman build "${args[@]}" .
  report_size "$tag"
  copy_sbom "$tag"
  exit 0
fi

args=(--format docker -f deploy/Containerfile -t "$tag" --build-arg "VARIANT=$variant")
if [ -z "$base" ] && [ "$variant" = cpu ]; then
  build_local_base
  base="$local_base"
fi
[ -n "$base" ] && args+=(--build-arg "${variant^^}_BASE_IMAGE=$base")
if [ "$use_wheelhouse" -eq 1 ]; then
  build_wheelhouse "${base:-docker.io/library/debian:bookworm-slim}"
  args+=(--build-arg "WHEELHOUSE=$cache/wheelhouse${extras:+-${extras//,/-}}")
else
  mkdir -p "$cache/empty-wheelhouse"
  args+=(--build-arg "WHEELHOUSE=$cache/empty-wheelhouse")
fi
[ -n "${TORCH_INDEX_URL:-}" ] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
[ -f "$ca_bundle" ] && args+=(--secret "id=ca_bundle,src=$ca_bundle")

step "podman build ${args[*]} ."
podman build "${args[@]}" .
step "built $tag"
report_size "$tag"
copy_sbom "$tag"
