#!/usr/bin/env bash
# The cold path (issue 10, "Speed"): how fast Strata serves a RAFS image whose chunks are all
# cold, beside the most it could: 2 cores x the single-core rate of loading a chunk (read,
# decompress, digest: JMH ReadPathBenchmark.miss1m, run here in the same invocation).
#
# Two images of one tree of thousands of files (default: /usr/include and /usr/share/doc, about
# 13,000 files and 290 MB, enough data that the JIT's warm-up in the first second is a small part):
# zstd + BLAKE3 (Nydus's defaults) and lz4 + SHA-256. Each round, for each image alternately, a
# fresh `strata serve nbd` with an empty cache large enough for the whole image is read whole by
# `nbdcopy --connections=2` into null:. Printed per image: device MiB/s, chunk-data MiB/s (the
# uncompressed bytes of the chunks, what the cores decompress and digest), and that rate as a share
# of the limit. Goal (issue 10): at least 70 % of the limit.
#
#   bench/cold-read.sh [ROUNDS=3] [DIRS="/usr/include /usr/share/doc"]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
dirs=${2:-/usr/include /usr/share/doc}
for t in nbdcopy python3; do command -v $t >/dev/null || { echo "need $t (apt-get install libnbd-bin python3)"; exit 1; }; done
[ -f cli/target/lib/core-blockmap-0.1.0-SNAPSHOT.jar ] && [ -f jmh/target/benchmarks.jar ] || mvn -B -q -DskipTests package

work=$(mktemp -d /tmp/strata-cold-read.XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

tree=$work/tree
mkdir -p "$tree"
for d in $dirs; do cp -a "$d" "$tree/$(basename "$d")"; done
echo "== images of $dirs ($(find "$tree" -type f | wc -l) files, $(du -sh "$tree" | cut -f1))"
declare -A chunk_mib device_mib
for variant in zstd-blake3 lz4-sha256; do
  codec=${variant%-*} digest=${variant#*-}
  bin/strata build "$tree" -o "$work/$variant" --compressor "$codec" --digest "$digest" >/dev/null 2>"$work/build-$variant.log" \
    || { cat "$work/build-$variant.log"; exit 1; }
  # The chunks' uncompressed bytes and the device size, from strata inspect --json.
  bin/strata inspect --json "$work/$variant/bootstrap" > "$work/$variant.json"
  read -r chunk_mib[$variant] device_mib[$variant] < <(python3 - "$work/$variant.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
blobs = r.get("blobs", [])
data = sum(b["chunk_bytes_uncompressed"] for b in blobs)
print(f"{data / 2**20:.1f} {r['flat_device_bytes'] / 2**20:.1f}")
PY
)
  echo "$variant: device ${device_mib[$variant]} MiB, chunk data ${chunk_mib[$variant]} MiB, blobs $(du -sh "$work/$variant/blobs" | cut -f1)"
done

echo "== single-core chunk load rate (JMH ReadPathBenchmark.miss1m, 1 MiB chunks)"
declare -A limit
for variant in zstd-blake3 lz4-sha256; do
  STRATA_JMH_OUT="$work/jmh-$variant" jmh/run-benchmarks.sh 'ReadPathBenchmark.miss1m' -p variant=$variant \
    > "$work/jmh-$variant.log" 2>&1 || { tail -30 "$work/jmh-$variant.log"; exit 1; }
  ops=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[0]['primaryMetric']['score'])" "$work/jmh-$variant/results.json")
  # One op loads one 1 MiB chunk: ops/s = MiB/s on one core; two cores at most twice that.
  limit[$variant]=$(python3 -c "print(f'{2 * $ops:.0f}')")
  printf '%s: %.0f MiB/s per core, limit on 2 cores %s MiB/s\n' "$variant" "$ops" "${limit[$variant]}"
done

serve() { # variant -> starts a server with an empty cache, sets $server
  local v=$1 sock=$work/$1.sock
  rm -f "$sock"
  bin/strata serve nbd "$work/$v/bootstrap" -D "$work/$v/blobs" --socket "$sock" \
    --cache-size "$(python3 -c "print(int(${chunk_mib[$v]} * 1.5) + 64)")M" --metrics-interval 0 > "$work/serve-$v.log" 2>&1 &
  server=$!
  for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
  echo "server for $v did not start:"; cat "$work/serve-$v.log"; exit 1
}

declare -A times
echo "== nbdcopy --connections=2 of the whole device, cold cache, $rounds round(s), alternating"
for r in $(seq "$rounds"); do
  for v in zstd-blake3 lz4-sha256; do
    serve "$v"
    s=$(date +%s.%N)
    nbdcopy --connections=2 "nbd+unix:///?socket=$work/$v.sock" null:
    e=$(date +%s.%N)
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    t=$(python3 -c "print(f'{$e - $s:.3f}')")
    times[$v]="${times[$v]:-} $t"
    echo "round $r $v: $t s"
  done
done

echo
printf '%-12s %8s %12s %14s %12s %8s\n' image "median s" "device MiB/s" "chunk MiB/s" "limit MiB/s" "share"
for v in zstd-blake3 lz4-sha256; do
  python3 - "$v" "${device_mib[$v]}" "${chunk_mib[$v]}" "${limit[$v]}" ${times[$v]} <<'PY'
import statistics, sys
v, dev, data, limit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
t = statistics.median(float(x) for x in sys.argv[5:])
share = data / t / limit
print(f"{v:<12} {t:8.2f} {dev / t:12.0f} {data / t:14.0f} {limit:12.0f} {share:7.0%}  (goal >= 70 %: {'MET' if share >= 0.7 else 'missed'})")
PY
done
