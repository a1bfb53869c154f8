#!/usr/bin/env bash
# The cold path (issue 10, "Speed"): how fast Strata serves a RAFS image whose chunks are all
# cold, beside the most it could: 2 cores x the single-core rate of loading THIS image's chunks
# (read, decompress, check the digest: JMH ImageChunksBenchmark on the image itself, run here in the
# same invocation). The 1 MiB-chunk rate (JMH ReadPathBenchmark.miss1m) is printed too, labelled, as
# before; it is not this image's limit: a tree of small files has one chunk per file, most of a few
# KiB, where per-chunk costs (a zstd frame's set-up, BLAKE3 below the 32 KiB its SIMD lanes need, the
# cache's bookkeeping) weigh far more than in a 1 MiB chunk (docs/benchmarks.md, "Cold read").
#
# Two images of one tree of tens of thousands of files (default: /usr/include, /usr/share and
# /usr/lib/jvm, about 58,000 files and 1.8 GB: mostly small files, plus a few JDKs' large ones; large
# enough that a read lasts seconds, so that the JIT's warm-up in a fresh server, about 2 CPU-seconds,
# is a small part): zstd + BLAKE3 (Nydus's defaults) and lz4 + SHA-256. Each round, for each image
# alternately, a fresh `strata serve nbd` with an empty cache large enough for the whole image is
# read whole by `nbdcopy --connections=2` into null:. Printed per read: wall time, the server's CPU
# time (user + sys), how much of it the JIT compiler threads took, and nbdcopy's own CPU time (it
# runs on the same 2 cores; the limit leaves it out, docs/benchmarks.md "Cold read", "Tenth
# session"). Summary per image: device
# MiB/s, chunk-data MiB/s (the uncompressed bytes of the chunks, what the cores decompress and
# digest), the limits and the share of this image's limit. Goal (issue 10): at least 70 % of it.
# On a shared machine, wall-clock rates depend on the CPU the server got: the chunk MiB per server
# CPU-second beside the single-core limit says how efficient it is whatever the load.
#
#   bench/cold-read.sh [ROUNDS=3] [DIRS="/usr/include /usr/share /usr/lib/jvm"]
#   SERVE_ARGS="--load-threads 2" bench/cold-read.sh    # extra arguments for every strata serve nbd
#   COMPARE_BIN=OTHER/bin/strata bench/cold-read.sh     # each read also by another build, alternating
#
# Takes about 5 minutes on a quiet 2-core machine (copying and building the images ~1.5 min, JMH
# ~2 min, 6 reads); needs ~6 GB in /tmp and ~3 GB of RAM per server (the cache holds the image).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
dirs=${2:-/usr/include /usr/share /usr/lib/jvm}
variants=(zstd-blake3 lz4-sha256)
for t in nbdcopy python3; do command -v $t >/dev/null || { echo "need $t (apt-get install libnbd-bin python3)"; exit 1; }; done
[ -f cli/target/lib/core-blockmap-0.1.0-SNAPSHOT.jar ] && [ -f jmh/target/benchmarks.jar ] || mvn -B -q -DskipTests package

work=$(mktemp -d /tmp/strata-cold-read.XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

tree=$work/tree
mkdir -p "$tree"
for d in $dirs; do cp -a "$d" "$tree/$(basename "$d")" 2>/dev/null || true; done # unreadable files are left out
echo "== images of $dirs ($(find "$tree" -type f | wc -l) files, $(du -sh "$tree" | cut -f1)); load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A chunk_mib device_mib
for variant in "${variants[@]}"; do
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
rm -rf "$tree"
# Every read below (JMH's and the servers') finds the blobs in the page cache.
cat "$work"/*/blobs/* > /dev/null

jmh_score() { # results.json benchmark-suffix param-name param-value [secondary] -> score
  python3 - "$@" <<'PY'
import json, sys
path, bench, key, value = sys.argv[1:5]
secondary = sys.argv[5] if len(sys.argv) > 5 else None
for r in json.load(open(path)):
    if r["benchmark"].endswith(bench) and r["params"][key] == value:
        print(r["secondaryMetrics"][secondary]["score"] if secondary else r["primaryMetric"]["score"])
        break
else:
    sys.exit(f"no {bench} result for {key}={value} in {path}")
PY
}

echo "== single-core chunk load rate of these images (JMH ImageChunksBenchmark: every chunk, one thread)"
images=$(IFS=,; echo "${variants[*]/#/$work/}")
STRATA_JMH_OUT="$work/jmh-image" jmh/run-benchmarks.sh 'ImageChunksBenchmark' -p image="$images" \
  > "$work/jmh-image.log" 2>&1 || { tail -30 "$work/jmh-image.log"; exit 1; }
grep -a '^\[image\]' "$work/jmh-image.log" || true
declare -A limit
for variant in "${variants[@]}"; do
  bytes=$(jmh_score "$work/jmh-image/results.json" loadChunk image "$work/$variant" bytes)
  micros=$(jmh_score "$work/jmh-image/results.json" loadChunk image "$work/$variant" cpuMicros)
  # Bytes of chunk data per CPU-second of the benchmark thread (its wall-clock rate on a quiet
  # machine; on a loaded one, the rate of the core it had): two cores at most twice that.
  limit[$variant]=$(python3 -c "print(f'{2 * $bytes / ($micros / 1e6) / 2**20:.0f}')")
  printf '%s: %.0f MiB per CPU-second, limit on 2 cores %s MiB/s (wall clock: %.0f MiB/s)\n' "$variant" \
    "$(python3 -c "print($bytes / ($micros / 1e6) / 2**20)")" "${limit[$variant]}" \
    "$(python3 -c "print($(jmh_score "$work/jmh-image/results.json" loadChunk image "$work/$variant") * $bytes / $(jmh_score "$work/jmh-image/results.json" loadChunk image "$work/$variant" ops) / 2**20)")"
done

echo "== single-core load rate of 1 MiB chunks (JMH ReadPathBenchmark.miss1m; not these images' limit)"
STRATA_JMH_OUT="$work/jmh-1m" jmh/run-benchmarks.sh 'ReadPathBenchmark.miss1m' -p variant="$(IFS=,; echo "${variants[*]}")" \
  > "$work/jmh-1m.log" 2>&1 || { tail -30 "$work/jmh-1m.log"; exit 1; }
declare -A limit1m
for variant in "${variants[@]}"; do
  ops=$(jmh_score "$work/jmh-1m/results.json" miss1m variant "$variant")
  # One op loads one 1 MiB chunk: ops/s = MiB/s on one core.
  limit1m[$variant]=$(python3 -c "print(f'{2 * $ops:.0f}')")
  printf '%s: %.0f MiB/s per core, on 2 cores %s MiB/s\n' "$variant" "$ops" "${limit1m[$variant]}"
done

# The server serves the image twice: as the default export, and as export "warm", a second device
# with a cache of its own. A "fresh" read reads the default export of a server just started; the
# JIT's warm-up is part of it (about 2 CPU-seconds: the compiler threads, and the loads that run
# interpreted or C1-compiled code meanwhile). A "warmed" read first reads export "warm" whole (the
# same loads: every code path the measured read takes), then the default export, whose cache is
# still empty: every chunk is loaded again, by compiled code, as JMH's limit is measured after its
# warm-up iterations.
builds=(bin/strata)
if [ -n "${COMPARE_BIN:-}" ]; then builds+=("$COMPARE_BIN"); fi
serve() { # variant launcher -> starts a server with empty caches, sets $server
  local v=$1 sock=$work/$1.sock
  rm -f "$sock"
  "$2" serve nbd "$work/$v/bootstrap" --export "warm=$work/$v/bootstrap" -D "$work/$v/blobs" --socket "$sock" \
    --cache-size "$(python3 -c "print(int(${chunk_mib[$v]} * 1.5) + 64)")M" --metrics-interval 0 ${SERVE_ARGS:-} > "$work/serve-$v.log" 2>&1 &
  server=$!
  for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
  echo "server for $v did not start:"; cat "$work/serve-$v.log"; exit 1
}

cpu_of() { # pid -> "total jit": CPU seconds (user + sys) of the process and of its JIT compiler threads
  local jit=0 t name fields f total
  # The process's own line counts the threads that have ended too.
  read -r -a f <<< "$(sed 's/.*) //' /proc/"$1"/stat)"
  total=$((f[11] + f[12]))
  for t in /proc/"$1"/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    fields=$(sed 's/.*) //' "$t/stat" 2>/dev/null) || continue
    read -r -a f <<< "$fields"
    case $name in C1\ Compiler*|C2\ Compiler*) jit=$((jit + f[11] + f[12])) ;; esac
  done
  local hz; hz=$(getconf CLK_TCK)
  python3 -c "print(f'{$total / $hz:.2f} {$jit / $hz:.2f}')"
}

declare -A times cpus jits clients
modes=(fresh warmed)
echo "== nbdcopy --connections=2 of the whole device, cold cache, $rounds round(s), alternating"
for r in $(seq "$rounds"); do
  for v in "${variants[@]}"; do
    for m in "${modes[@]}"; do
     for b in "${!builds[@]}"; do
      serve "$v" "${builds[$b]}"
      if [ "$m" = warmed ]; then
        nbdcopy --connections=2 "nbd+unix:///warm?socket=$work/$v.sock" null:
      fi
      before=$(cpu_of "$server")
      s=$(date +%s.%N)
      # The client's CPU too (bash's time: user and system seconds of nbdcopy): it shares the 2 cores
      # with the server, and the limit leaves it out.
      { TIMEFORMAT='%U %S'; time nbdcopy --connections=2 "nbd+unix:///?socket=$work/$v.sock" null: 2>&3; } 3>&2 2>"$work/client-time"
      e=$(date +%s.%N)
      read -r cu cs < "$work/client-time"
      read -r cpu jit < <(cpu_of "$server")
      read -r cpu0 jit0 <<< "$before"
      kill "$server"; wait "$server" 2>/dev/null || true; server=
      t=$(python3 -c "print(f'{$e - $s:.3f}')")
      c=$(python3 -c "print(f'{$cpu - $cpu0:.2f}')")
      j=$(python3 -c "print(f'{$jit - $jit0:.2f}')")
      k=$(python3 -c "print(f'{$cu + $cs:.2f}')")
      times[$v-$m-$b]="${times[$v-$m-$b]:-} $t"
      cpus[$v-$m-$b]="${cpus[$v-$m-$b]:-} $c"
      jits[$v-$m-$b]="${jits[$v-$m-$b]:-} $j"
      clients[$v-$m-$b]="${clients[$v-$m-$b]:-} $k"
      who=; if [ "$b" != 0 ]; then who=" (other)"; fi
      echo "round $r $v $m$who: $t s, server CPU $c s (JIT compiler threads $j s), nbdcopy CPU $k s, load average $(cut -d' ' -f1 /proc/loadavg)"
     done
    done
  done
done

echo
echo "Medians. chunk/s = chunk MiB/s; share = that / limit (MiB/s, this image, 2 cores); per CPU-s = chunk MiB"
echo "per second of server CPU (user + sys), eff = that / the single-core limit (half the limit), whatever"
echo "CPU the server got. client s = nbdcopy's CPU (user + sys), on the same 2 cores: the limit leaves it out."
echo "The 1 MiB figures are not these images' limit (see above)."
printf '%-27s %6s %6s %6s %8s %9s %8s %7s %6s %9s %5s %9s %8s\n' image "wall s" "CPU s" "JIT s" "client s" "dev MiB/s" "chunk/s" "limit" share "per CPU-s" eff "1 MiB lim" "share 1M"
for v in "${variants[@]}"; do
  for m in "${modes[@]}"; do
   for b in "${!builds[@]}"; do
    label="$v $m"; if [ "$b" != 0 ]; then label="$label (other)"; fi
    python3 - "$label" "${device_mib[$v]}" "${chunk_mib[$v]}" "${limit[$v]}" "${limit1m[$v]}" "${times[$v-$m-$b]}" "${cpus[$v-$m-$b]}" "${jits[$v-$m-$b]}" "${clients[$v-$m-$b]}" <<'PY'
import statistics, sys
v, dev, data, limit, limit1m = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
t, cpu, jit, client = (statistics.median(float(x) for x in a.split()) for a in sys.argv[6:10])
share = data / t / limit
print(f"{v:<27} {t:6.2f} {cpu:6.2f} {jit:6.2f} {client:8.2f} {dev / t:9.0f} {data / t:8.0f} {limit:7.0f} {share:6.0%} {data / cpu:9.0f} "
      f"{data / cpu / (limit / 2):5.0%} {limit1m:9.0f} {data / t / limit1m:8.0%}   goal >= 70 % of limit: {'MET' if share >= 0.7 else 'missed'}")
PY
   done
  done
done
if [ -n "${COMPARE_BIN:-}" ]; then echo "(other) = $COMPARE_BIN"; fi
