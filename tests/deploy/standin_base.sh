#!/usr/bin/env bash
# A local stand-in for python:3.11-slim-bookworm, for building the project's Dockerfile where no registry
# is reachable: Debian bookworm (debootstrap minbase) with Debian's python3.11 and pip, `python` and `pip`
# on PATH and no EXTERNALLY-MANAGED marker, as the official image has. Imported into podman as $1.
# Needs root, debootstrap and podman; takes a few minutes, so the image test builds it once per tag.
set -euo pipefail
tag=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$(mktemp -d /var/tmp/standin-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3.11,python3-pip,ca-certificates bookworm "$rootfs" "$mirror" >/dev/null
rm -f "$rootfs"/usr/lib/python3.11/EXTERNALLY-MANAGED
ln -sf /usr/bin/python3.11 "$rootfs"/usr/local/bin/python
ln -sf /usr/bin/pip3 "$rootfs"/usr/local/bin/pip
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
