#!/usr/bin/env bash
# Strata's NBD server beside nbdkit (file plugin) and qemu-nbd (-t -e 16) on the same page-cached
# raw image, over unix sockets, measured with fio's nbd engine in one run, alternating servers.
# Prints IOPS / MiB/s, each server's CPU seconds per GiB moved, and Strata's ratio to each peer.
# Then Strata alone on lz4 and zstd RAFS images (warm cache) of the same size, beside the raw figure,
# and `strata-nowait`: the raw image again with `--batch-wait 0` (no reply coalescing, BatchWait).
#
#   bench/nbd-vs-peers.sh [SIZE_MIB=512] [ROUNDS=3] [SECONDS=10]
#   NBD_BENCH_QD4=1 bench/nbd-vs-peers.sh ...   also 4 KiB random reads at queue depth 4, where a
#                                               client's whole queue fits one batch
#   NBD_BENCH_BEFORE=DIR bench/nbd-vs-peers.sh ...  also `strata-before`: the raw image served by another
#                                               built checkout's bin/strata (DIR), in the same rotation
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-512}
rounds=${2:-3}
secs=${3:-10}
for t in fio nbdkit qemu-nbd nbdcopy; do command -v $t >/dev/null || { echo "need $t (apt-get install fio nbdkit qemu-utils libnbd-bin)"; exit 1; }; done
[ -f cli/target/lib/core-blockmap-0.1.0-SNAPSHOT.jar ] && [ -f jmh/target/benchmarks.jar ] || mvn -B -q -DskipTests package

work=$(mktemp -d /tmp/strata-nbd-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The images: synthetic RAFS images (lz4, zstd; 1 MiB chunks of text-like data), and the raw image
# is the lz4 image's exported flat device, so every server serves the same bytes.
for codec in lz4 zstd; do
  java -cp jmh/target/benchmarks.jar io.strata.jmh.WriteBenchImage "$work/$codec" "$codec" "$size_mib" >/dev/null
done
bin/strata export "$work/lz4/bootstrap" -D "$work/lz4/blobs" -o "$work/raw.img" 2>/dev/null >/dev/null
cat "$work/raw.img" > /dev/null   # page-cache it

start() { # name, command...
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  pids+=($!)
  echo $! > "$work/$name.pid"
}
start strata bin/strata serve nbd --raw "$work/raw.img" --socket "$work/strata.sock" --metrics-interval 0
start nbdkit nbdkit -f -r --unix "$work/nbdkit.sock" file "$work/raw.img"
start qemu-nbd qemu-nbd -t -e 16 -r -f raw -k "$work/qemu-nbd.sock" "$work/raw.img"
start strata-lz4 bin/strata serve nbd "$work/lz4/bootstrap" -D "$work/lz4/blobs" --cache-size $((size_mib * 2))M --socket "$work/strata-lz4.sock" --metrics-interval 0
start strata-zstd bin/strata serve nbd "$work/zstd/bootstrap" -D "$work/zstd/blobs" --cache-size $((size_mib * 2))M --socket "$work/strata-zstd.sock" --metrics-interval 0
start strata-nowait bin/strata serve nbd --raw "$work/raw.img" --batch-wait 0 --socket "$work/strata-nowait.sock" --metrics-interval 0
servers=(strata nbdkit qemu-nbd strata-lz4 strata-zstd strata-nowait)
if [ -n "${NBD_BENCH_BEFORE:-}" ]; then
  start strata-before "$NBD_BENCH_BEFORE/bin/strata" serve nbd --raw "$work/raw.img" --socket "$work/strata-before.sock" --metrics-interval 0
  servers+=(strata-before)
fi
for s in "${servers[@]}"; do
  for i in $(seq 100); do [ -S "$work/$s.sock" ] && break; sleep 0.2; done
  [ -S "$work/$s.sock" ] || { echo "$s did not start:"; cat "$work/$s.log"; exit 1; }
done
# Warm the RAFS caches: one full read each.
for s in strata-lz4 strata-zstd; do nbdcopy "nbd+unix:///?socket=$work/$s.sock" null: ; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$(cat "$work/$1.pid")/stat"; }
hz=$(getconf CLK_TCK)

run() { # server, workload -> "value cpu_seconds gib"
  local s=$1 w=$2 args
  case $w in
    rand4k) args="--rw=randread --bs=4k --iodepth=32" ;;
    rand4kqd4) args="--rw=randread --bs=4k --iodepth=4" ;;
    seq1m) args="--rw=read --bs=1m --iodepth=4" ;;
  esac
  local before; before=$(cpu_ticks "$s")
  fio --name=b --ioengine=nbd --uri="nbd+unix:///?socket=$work/$s.sock" $args --runtime="$secs" --time_based \
      --output-format=json > "$work/fio.json" 2>"$work/fio.err" || { cat "$work/fio.err" >&2; return 1; }
  local after; after=$(cpu_ticks "$s")
  python3 - "$work/fio.json" "$w" "$before" "$after" "$hz" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
if "{" not in text:
    sys.exit("fio printed no JSON: " + text[:500])
j = json.loads(text[text.index("{"):])["jobs"][0]["read"]
w, before, after, hz = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
gib = j["io_bytes"] / 2**30
value = j["iops"] if w.startswith("rand4k") else j["bw_bytes"] / 2**20
print(f"{value:.1f} {(after - before) / hz:.3f} {gib:.3f}")
PY
}

declare -A sum cpu gib
workloads=(rand4k seq1m)
[ -n "${NBD_BENCH_QD4:-}" ] && workloads+=(rand4kqd4)
for r in $(seq "$rounds"); do
  for w in "${workloads[@]}"; do
    for s in "${servers[@]}"; do
      read -r v c g < <(run "$s" "$w")
      sum[$s.$w]=$(python3 -c "print(${sum[$s.$w]:-0} + $v)")
      cpu[$s.$w]=$(python3 -c "print(${cpu[$s.$w]:-0} + $c)")
      gib[$s.$w]=$(python3 -c "print(${gib[$s.$w]:-0} + $g)")
      echo "round $r $w $s: $v" >&2
    done
  done
done

echo
echo "NBD over unix sockets, fio --ioengine=nbd, ${size_mib} MiB image, ${rounds} rounds x ${secs}s, $(nproc) CPUs, $(java -version 2>&1 | head -n 1)"
printf '%-12s %14s %10s %14s %10s\n' server "4k IOPS(qd32)" "CPU s/GiB" "1M MiB/s(qd4)" "CPU s/GiB"
for s in "${servers[@]}"; do
  python3 - "$s" "$rounds" "${sum[$s.rand4k]}" "${cpu[$s.rand4k]}" "${gib[$s.rand4k]}" "${sum[$s.seq1m]}" "${cpu[$s.seq1m]}" "${gib[$s.seq1m]}" <<'PY'
import sys
s, n = sys.argv[1], int(sys.argv[2])
r4, c4, g4, r1, c1, g1 = map(float, sys.argv[3:])
print(f"{s:<12} {r4/n:14.0f} {c4/g4:10.2f} {r1/n:14.0f} {c1/g1:10.2f}")
PY
done
python3 - <<PY
s4, k4, q4 = ${sum[strata.rand4k]}, ${sum[nbdkit.rand4k]}, ${sum[qemu-nbd.rand4k]}
s1, k1, q1 = ${sum[strata.seq1m]}, ${sum[nbdkit.seq1m]}, ${sum[qemu-nbd.seq1m]}
print()
print(f"ratio strata/nbdkit:   4k IOPS {s4/k4:.2f}x   1M throughput {s1/k1:.2f}x")
print(f"ratio strata/qemu-nbd: 4k IOPS {s4/q4:.2f}x   1M throughput {s1/q1:.2f}x")
# Server CPU per GiB moved, summed over the rounds (issue 10: 4 KiB at most 0.5x nbdkit's).
sc4, kc4 = ${cpu[strata.rand4k]} / ${gib[strata.rand4k]}, ${cpu[nbdkit.rand4k]} / ${gib[nbdkit.rand4k]}
sc1, kc1 = ${cpu[strata.seq1m]} / ${gib[strata.seq1m]}, ${cpu[nbdkit.seq1m]} / ${gib[nbdkit.seq1m]}
print(f"ratio strata/nbdkit:   4k CPU per GiB {sc4/kc4:.2f}x   1M CPU per GiB {sc1/kc1:.2f}x")
# The batch wait's effect: the same server without it, in the same rotation.
nw4, nwc4 = ${sum[strata-nowait.rand4k]}, ${cpu[strata-nowait.rand4k]} / ${gib[strata-nowait.rand4k]}
print(f"ratio strata/strata-nowait: 4k IOPS {s4/nw4:.2f}x   4k CPU per GiB {sc4/nwc4:.2f}x")
PY
if [ -n "${NBD_BENCH_BEFORE:-}" ]; then
  python3 - <<PY
s4, b4 = ${sum[strata.rand4k]}, ${sum[strata-before.rand4k]}
s1, b1 = ${sum[strata.seq1m]}, ${sum[strata-before.seq1m]}
sc4, bc4 = ${cpu[strata.rand4k]} / ${gib[strata.rand4k]}, ${cpu[strata-before.rand4k]} / ${gib[strata-before.rand4k]}
print(f"ratio strata/strata-before: 4k IOPS {s4/b4:.2f}x   1M throughput {s1/b1:.2f}x   4k CPU per GiB {sc4/bc4:.2f}x")
PY
fi
if [ -n "${NBD_BENCH_QD4:-}" ]; then
  echo
  printf '%-14s %14s %10s\n' server "4k IOPS(qd4)" "CPU s/GiB"
  for s in "${servers[@]}"; do
    python3 -c "print(f'{\"$s\":<14} {${sum[$s.rand4kqd4]} / $rounds:14.0f} {${cpu[$s.rand4kqd4]} / ${gib[$s.rand4kqd4]}:10.2f}')"
  done
fi
