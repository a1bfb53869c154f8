#!/usr/bin/env bash
# The main job on a sample that ships with the checkout: build Strata, build a RAFS v6 image from
# Strata's own source tree with `strata build`, inspect it, compose it into one flat block device
# with a dm-verity tree, mount that device with the kernel's EROFS driver, and compare the mounted
# tree with the sources. STRATA_SAMPLE may name another source (a directory, a tar or an OCI layout).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
mvn -B -DskipTests package

sample=${STRATA_SAMPLE:-$PWD}
work=$(mktemp -d /tmp/strata-demo.XXXXXX)
bin/strata build "$sample" -o "$work/img" --source-date-epoch 0
bin/strata inspect "$work/img/bootstrap"
bin/strata export "$work/img/bootstrap" -D "$work/img/blobs" -o "$work/disk.raw" --verity=veritysetup

mkdir -p "$work/mnt"
mount -t erofs -o ro,loop "$work/disk.raw" "$work/mnt"
trap 'umount "$work/mnt" 2>/dev/null || true' EXIT
echo "== mounted the flat device at $work/mnt:"
ls -l "$work/mnt"
if [ -d "$sample" ] && [ -z "${STRATA_SAMPLE:-}" ]; then
  diff -r --no-dereference core-blockmap/src "$work/mnt/core-blockmap/src" && echo "== core-blockmap/src in the image is identical to the checkout's"
fi

# Serve it: the same image over NBD on a unix socket, read back with nbdinfo and nbdcopy.
bin/strata serve nbd "$work/img/bootstrap" -D "$work/img/blobs" --socket "$work/nbd.sock" --metrics-interval 0 &
server=$!
trap 'kill $server 2>/dev/null || true; umount "$work/mnt" 2>/dev/null || true' EXIT
for i in $(seq 100); do [ -S "$work/nbd.sock" ] && break; sleep 0.2; done
nbdinfo "nbd+unix:///?socket=$work/nbd.sock"
nbdinfo --map "nbd+unix:///?socket=$work/nbd.sock"
nbdcopy "nbd+unix:///?socket=$work/nbd.sock" "$work/served.raw"
cmp <(head -c "$(stat -c %s "$work/served.raw")" "$work/disk.raw") "$work/served.raw" \
  && echo "== the device served over NBD is byte-identical to the exported one"
# The lazy path: push the image to a local registry (Debian's docker-registry on 127.0.0.1, plain
# HTTP as loopback always is) and serve it by reference with an empty cache: only the chunks read
# are fetched, with range requests. STRATA_DEMO_REGISTRY=0 leaves this out.
if [ "${STRATA_DEMO_REGISTRY:-1}" != 0 ] && command -v docker-registry >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$work/registry"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry/storage" "$port" > "$work/registry/config.yml"
  # Its access log (stdout, a line per request) goes to a file beside its own log, not the terminal.
  docker-registry serve "$work/registry/config.yml" >"$work/registry/access.log" 2>"$work/registry/log" &
  registry=$!
  trap 'kill $server $registry 2>/dev/null || true; umount "$work/mnt" 2>/dev/null || true' EXIT
  for i in $(seq 150); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
  ref="127.0.0.1:$port/strata/demo:latest"
  bin/strata push "$work/img" "$ref"
  bin/strata serve nbd "$ref" --cache-dir "$work/cache" --socket "$work/lazy.sock" --metrics-interval 0 &
  lazy=$!
  trap 'kill $server $registry $lazy 2>/dev/null || true; umount "$work/mnt" 2>/dev/null || true' EXIT
  for i in $(seq 150); do [ -S "$work/lazy.sock" ] && break; sleep 0.2; done
  nbdcopy "nbd+unix:///?socket=$work/lazy.sock" "$work/lazy.raw"
  cmp "$work/served.raw" "$work/lazy.raw" \
    && echo "== the device served lazily from $ref is byte-identical too ($(grep -c 'http.response.status=206' "$work/registry/log") range requests)"
fi
echo "== still serving: nbd+unix:///?socket=$work/nbd.sock (Ctrl-C to stop)"
[ -t 0 ] && wait $server || true
