#!/usr/bin/env bash
# Many small exports: one Strata daemon (strata serve --control) holding N NBD exports, beside N
# separate `strata serve nbd` processes and beside one qemu-storage-daemon with N NBD exports of the
# same flat device (the file `strata export` writes), for N in COUNTS. Every export is read once
# (nbdcopy to null:) before memory is measured, so each has opened its image and touched its cache.
# Prints, per N: total RSS (MiB) and threads of each contender, and the daemon's RSS relative to its
# own with one export. Then the time from `strata ctl add` (and from a bare curl POST) to a client's
# first 4 KiB read of the new export, median of ROUNDS.
#
#   bench/many-exports.sh [COUNTS="1 10 50"] [ROUNDS=10]
# Needs nbdcopy (libnbd-bin), /usr/bin/python3 with python3-libnbd, curl, qemu-storage-daemon. The image is the
# Nydus fixture (2 MiB flat device; STRATA_FIXTURES, default ../shared/fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
counts=${1:-"1 10 50"}
rounds=${2:-10}
fixtures=${STRATA_FIXTURES:-$(pwd)/../shared/fixtures}
boot=$fixtures/nydus-rafs-v6/rafs-v6-2.2.boot
blobs=$fixtures/nydus-rafs-v6
for t in nbdcopy curl qemu-storage-daemon; do command -v $t >/dev/null || { echo "need $t"; exit 1; }; done
[ -d cli/target/lib ] || mvn -B -q -DskipTests package

work=$(mktemp -d /tmp/strata-many.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

bin/strata export "$boot" -D "$blobs" -o "$work/flat.raw" >/dev/null 2>&1

await_socket() { # path
  for _ in $(seq 1 600); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "no socket $1"; exit 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
body() { # name
  printf '{"kind":"nbd","name":"%s","source":"%s","blob_dir":"%s"}' "$1" "$boot" "$blobs"
}

declare -A daemon_rss
printf '%-6s %-28s %10s %8s\n' N contender RSS_MiB threads
for n in $counts; do
  # One daemon, n exports.
  rm -f "$work/c.sock" "$work/d.sock"
  bin/strata serve --control "$work/c.sock" --socket "$work/d.sock" --metrics-interval 0 2>"$work/daemon.log" &
  pids+=($!); d=$!
  await_socket "$work/c.sock"
  for i in $(seq 1 "$n"); do
    curl -sf --unix-socket "$work/c.sock" -XPOST --data-binary "$(body e$i)" http://strata/api/v1/exports >/dev/null
    nbdcopy "nbd+unix:///e$i?socket=$work/d.sock" null:
  done
  sleep 1
  r=$(rss_kib $d); daemon_rss[$n]=$r
  printf '%-6s %-28s %10s %8s\n' "$n" "strata daemon (1 process)" "$(mib $r)" "$(threads $d)"
  stop_all

  # n separate strata serve nbd processes.
  for i in $(seq 1 "$n"); do
    bin/strata serve nbd "$boot" -D "$blobs" --socket "$work/s$i.sock" --metrics-interval 0 2>>"$work/serve.log" &
    pids+=($!)
  done
  total=0; nthreads=0
  for i in $(seq 1 "$n"); do
    await_socket "$work/s$i.sock"
    nbdcopy "nbd+unix:///?socket=$work/s$i.sock" null:
  done
  sleep 1
  for p in "${pids[@]}"; do total=$((total + $(rss_kib $p))); nthreads=$((nthreads + $(threads $p))); done
  printf '%-6s %-28s %10s %8s\n' "$n" "strata serve nbd x$n" "$(mib $total)" "$nthreads"
  stop_all
  rm -f "$work"/s*.sock

  # One qemu-storage-daemon, n exports of the flat device.
  args=(--nbd-server "addr.type=unix,addr.path=$work/q.sock")
  for i in $(seq 1 "$n"); do
    args+=(--blockdev "driver=file,filename=$work/flat.raw,node-name=f$i,read-only=on" --export "type=nbd,id=x$i,node-name=f$i,name=e$i")
  done
  rm -f "$work/q.sock"
  qemu-storage-daemon "${args[@]}" &
  pids+=($!); q=$!
  await_socket "$work/q.sock"
  for i in $(seq 1 "$n"); do nbdcopy "nbd+unix:///e$i?socket=$work/q.sock" null:; done
  sleep 1
  printf '%-6s %-28s %10s %8s\n' "$n" "qemu-storage-daemon" "$(mib $(rss_kib $q))" "$(threads $q)"
  stop_all
done
first=${counts%% *}
for n in $counts; do
  awk -v n="$n" -v a="${daemon_rss[$n]}" -v b="${daemon_rss[$first]}" 'BEGIN { printf "daemon RSS with %s export(s) / with %s: %.2fx\n", n, '"$first"', a / b }'
done

# Time from `strata ctl add` (a JVM start, the request, the image opened) and from a curl POST to
# the first 4 KiB read of the new export by a fresh client.
rm -f "$work/c.sock" "$work/d.sock"
bin/strata serve --control "$work/c.sock" --socket "$work/d.sock" --metrics-interval 0 2>"$work/daemon.log" &
pids+=($!)
await_socket "$work/c.sock"
# libnbd's Python binding, on the system's python3 (nbdsh would take the first python3 on PATH).
read_first() { /usr/bin/python3 -c 'import nbd, sys; h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.pread(4096, 0)' "nbd+unix:///$1?socket=$work/d.sock"; }
now() { date +%s.%N; }
ctl_ms=(); curl_ms=()
for r in $(seq 1 "$rounds"); do
  t0=$(now)
  bin/strata ctl --control "$work/c.sock" add nbd "t$r" "$boot" -D "$blobs" >/dev/null
  read_first "t$r"
  ctl_ms+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
  t0=$(now)
  curl -sf --unix-socket "$work/c.sock" -XPOST --data-binary "$(body u$r)" http://strata/api/v1/exports >/dev/null
  read_first "u$r"
  curl_ms+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "ctl add -> first read: median $(median "${ctl_ms[@]}") ms (of $rounds; each: ${ctl_ms[*]})"
echo "curl POST -> first read: median $(median "${curl_ms[@]}") ms (of $rounds; each: ${curl_ms[*]})"
