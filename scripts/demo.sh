#!/usr/bin/env bash
# The main job on the sample image: build Strata, inspect the Nydus sample, compose it into one flat
# block device with a dm-verity tree, and mount that device with the kernel's EROFS driver.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
mvn -B -q -DskipTests package

sample=${STRATA_SAMPLE:-../shared/fixtures/nydus-rafs-v6}
work=$(mktemp -d /tmp/strata-demo.XXXXXX)
bin/strata inspect "$sample/rafs-v6-2.2.boot"
bin/strata export "$sample/rafs-v6-2.2.boot" -D "$sample" -o "$work/disk.raw" --verity=veritysetup

mkdir -p "$work/mnt"
mount -t erofs -o ro,loop "$work/disk.raw" "$work/mnt"
trap 'umount "$work/mnt" 2>/dev/null || true' EXIT
echo "== mounted the flat device at $work/mnt:"
ls -l "$work/mnt"
sha256sum "$work/mnt"/*
