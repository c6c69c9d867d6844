#!/usr/bin/env bash
# Builds localhost/arko-base:latest, the image arko's container steps and its
# own images start from, with no registry: Debian bookworm made by debootstrap
# (minbase, with python3 and python3-venv) and imported into podman's storage.
# Idempotent: an image already there is kept (ARKO_BASE_REBUILD=1 replaces it).
# Needs root (debootstrap), debootstrap and podman: `make containers` installs them.
set -euo pipefail

IMAGE=${ARKO_BASE_IMAGE:-localhost/arko-base:latest}
SUITE=${ARKO_BASE_SUITE:-bookworm}
MIRROR=${ARKO_BASE_MIRROR:-http://deb.debian.org/debian}

for tool in debootstrap podman; do
    if ! command -v "$tool" >/dev/null; then
        echo "containers/base.sh: $tool is missing; install it with make containers" \
            "(Debian: apt-get install podman runc catatonit debootstrap uidmap)" >&2
        exit 1
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "containers/base.sh: debootstrap needs root; run it as root" >&2
    exit 1
fi
if [ "${ARKO_BASE_REBUILD:-}" != 1 ] && podman image exists "$IMAGE"; then
    echo "containers/base.sh: $IMAGE exists already (ARKO_BASE_REBUILD=1 rebuilds it)"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/arko-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "containers/base.sh: debootstrap $SUITE into $work/rootfs (a minute or so)"
debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$work/rootfs" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    echo "containers/base.sh: debootstrap failed (its log's end is above)" >&2
    exit 1
}
# Package lists and caches only make the image larger.
rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
    "$work"/rootfs/var/cache/apt/archives/*.deb
tar -C "$work/rootfs" -c . | podman import --change 'CMD ["/bin/sh"]' - "$IMAGE"
echo "containers/base.sh: built $IMAGE"
