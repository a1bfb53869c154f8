#!/usr/bin/env bash
# Soak: Strata's servers under steady mixed load for MINUTES, sampling every Strata process's memory,
# threads, fds and mappings; prints the samples, one verdict per metric per process (flat or
# growing) and the correctness checks. Exits 0 only when every judged metric stayed flat and every
# byte read was right; 1 otherwise (a missing tool too); 2 on a bad argument.
#
#   bench/soak.sh [MINUTES=2]        (scripts/test.sh runs `bench/soak.sh 2`; docs/benchmarks.md has a 30-minute run)
#
# Everything runs on unix sockets under one temporary directory and stops by itself: the load
# runs MINUTES (plus the guests' boot before and the final checks after), and the EXIT trap kills
# every process this script started, by pid.
#
# - The image: `strata build` (zstd, 1 MiB chunks) of a generated tree (SOAK_IMAGE_MIB, default 128:
#   text-like and random files, duplicates that dedup, zero runs that become holes, 2,000 small
#   files). Each server gets a chunk cache (SOAK_CACHE, default 32M) a quarter of the device, so
#   reads keep missing, loading, digesting and evicting. `strata export` of the image is the
#   reference every check compares with.
# - The servers: one `strata serve nbd` and two `strata serve vhost-user` processes on that image.
#   Two vhost-user processes because a vhost-user back-end serves one front-end per socket and
#   `serve vhost-user` listens on one socket.
# - vhost-user load: two real front-ends, QEMU guests of the guest kit (scripts/guest-kit.sh: QEMU
#   10, Linux 6.12, busybox; TCG, 256 MiB): guest0 with 1 vCPU and 1 queue, guest1 with 2 vCPUs and
#   2 queues (virtio-blk uses at most one queue per CPU). Each reads random 1 MiB blocks of /dev/vda
#   with O_DIRECT, as 4 KiB, 64 KiB or 1 MiB requests, checks each block's md5 against the export's
#   (a list in its initramfs), pauses 50 ms, and after MINUTES md5s the whole disk. Real guests
#   rather than the Java test front-end: they are the peer Strata serves in production (virtio-blk,
#   blk-mq, QEMU's vhost-user code), and paced, with idle vCPUs halting, two fit beside the NBD load
#   on two cores. The clock starts when both guests have booted and started reading.
# - NBD load: fio's nbd engine, SOAK_NBD_CONNS (100) jobs as threads of one fio, each job holding
#   its own connection for the whole run: random reads of 4 KiB to 1 MiB (bssplit), queue depth 1,
#   paced by --rate_iops=SOAK_RATE (3). With a mix of sizes fio applies that as a bandwidth cap of
#   SOAK_RATE x the smallest size (4 KiB) per connection, so the 100 connections read about 1.2 MB/s
#   (11 reads a second, a 1 MiB read holding its connection back for a while): many connections
#   kept open and busy now and then, not a throughput test; the copies below carry the volume.
#   The jobs connect over the first 5 s (startdelay range). Beside it a churn loop
#   opens and closes a connection (nbdinfo) every 2 s, so whatever a connection leaks adds up, and
#   every 30 s copies the whole device (nbdcopy | sha256sum) and compares it with the export;
#   after the run one more copy is compared.
#
# Sampling: every SOAK_INTERVAL seconds (3 for runs up to 5 minutes, else 10), for each server JVM:
# VmRSS, RssAnon and Threads from /proc/PID/status, the entries of /proc/PID/fd, the lines of
# /proc/PID/maps, and CPU seconds from /proc/PID/stat.
#
# "Flat": the first 20 % of the run is warm-up (JVM start, JIT, G1 sizing, the cache filling up,
# the connections arriving) and is not judged. The rest is split into two equal halves; a metric is
# flat when the maximum of the later half is at most the maximum of the earlier half plus:
#   anon RSS: max(10 %, 32 MiB)   (malloc arenas, the JIT's code cache move by MiBs)
#   threads:  max(5 %, 4)         (the churn connection, JIT compiler threads come and go)
#   fds:      max(5 %, 4)         (the churn connection; nbdcopy's 4)
#   maps:     max(5 %, 8)         (thread stacks; a guest memory table mapped again and again)
# Total RSS is printed but not judged: in a vhost-user back-end it includes the guest RAM it has
# mapped and written into, which grows toward the guest's 256 MiB as the guest's page allocator
# hands out new buffers, and page cache of the blob files; neither is memory the server keeps.
# A leak that keeps growing through the run exceeds the tolerance; each verdict line also shows the
# growth per minute (least squares over the judged samples).
#
# The servers run with a fixed, pre-touched heap (SOAK_HEAP, default 256m; see jvmopts below) and
# log their GCs; the verdicts show the heap left after the collections of the first and last thirds.
#
# Knobs (environment): SOAK_IMAGE_MIB, SOAK_CACHE, SOAK_NBD_CONNS, SOAK_RATE, SOAK_INTERVAL, SOAK_HEAP,
# SOAK_GUESTS (0-2), SOAK_KEEP=1 keeps the work directory, STRATA_CACHE (guest kit location).
# Needs bin/strata built (mvn -B -DskipTests package; it runs on JAVA_HOME's or PATH's java), fio,
# nbdcopy and nbdinfo (libnbd-bin), cpio, python3 and the guest kit, all from scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

minutes=${1:-2}
if ! [[ $minutes =~ ^[0-9]+$ ]] || [ "$minutes" -lt 1 ] || [ $# -gt 1 ]; then
  echo "usage: bench/soak.sh [MINUTES]   (a whole number of minutes, at least 1)" >&2
  exit 2
fi
duration=$((minutes * 60))
image_mib=${SOAK_IMAGE_MIB:-128}
cache=${SOAK_CACHE:-32M}
conns=${SOAK_NBD_CONNS:-100}
rate=${SOAK_RATE:-3}
guests=${SOAK_GUESTS:-2}
if [ -n "${SOAK_INTERVAL:-}" ]; then interval=$SOAK_INTERVAL
elif [ "$minutes" -le 5 ]; then interval=3
else interval=10; fi

fail() { echo "soak: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || fail "needs $1 (package $2; scripts/install-deps.sh installs it)"; }
need fio fio
need nbdcopy libnbd-bin
need nbdinfo libnbd-bin
need cpio cpio
need python3 python3
need sha256sum coreutils
need md5sum coreutils
need timeout coreutils
kit=${STRATA_CACHE:-/var/cache/strata}/guest-kit
if [ "$guests" -gt 0 ]; then
  [ -f "$kit/kit.env" ] || fail "needs the guest kit at $kit (scripts/guest-kit.sh builds it)"
  # shellcheck disable=SC1091
  source "$kit/kit.env"
  [ -x "$qemu" ] && [ -f "$kernel" ] && [ -f "$initramfs" ] || fail "guest kit at $kit is incomplete (rerun scripts/guest-kit.sh)"
fi
[ -d cli/target/lib ] || fail "bin/strata is not built (mvn -B -DskipTests package)"
strata=$root/bin/strata

work=$(mktemp -d /tmp/strata-soak.XXXXXX)
pids=()
cleanup() {
  local p
  # The churn loop's current nbdinfo/nbdcopy/sleep first (children of its subshell), then each
  # process this script started.
  for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    # Wait up to 10 s for each, then SIGKILL: the trap must not hang either.
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${SOAK_KEEP:-}" = 1 ]; then echo "soak: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "soak: $(date -u +%H:%M:%S) $*" >&2; }

# --- the image ----------------------------------------------------------------------------------
log "generating a ${image_mib} MiB tree"
python3 - "$work/tree" "$image_mib" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
rnd = random.Random(8)          # fixed seed: the same tree every run
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(3000)]
pool = " ".join(rnd.choice(words) for _ in range(400000)).encode()   # ~2.4 MB of text-like bytes
def text(n):
    out, left = [], n
    while left > 0:
        k = min(left, rnd.randint(4096, 65536))
        o = rnd.randrange(0, len(pool) - k)
        out.append(pool[o:o + k]); left -= k
    return b"".join(out)
written, made = 0, []
def put(path, data):
    global written
    p = os.path.join(root, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    written += len(data); made.append(p)
for i in range(2000):                                   # small files: metadata, inline tails
    put(f"small/d{i % 40:02d}/f{i:04d}.txt", text(rnd.randint(100, 48 << 10)))
i = 0
while written < total:
    kind = i % 10
    size = rnd.randint(256 << 10, 6 << 20)
    if kind in (0, 1, 2, 3, 4):                         # compressible text
        put(f"big/text{i:04d}.txt", text(size))
    elif kind in (5, 6):                                # incompressible
        put(f"big/rand{i:04d}.bin", rnd.randbytes(size))
    elif kind == 7 and made:                            # a duplicate: its chunks dedup
        src = rnd.choice(made)
        put(f"dup/copy{i:04d}", open(src, "rb").read())
    else:                                               # zero runs between data: holes
        put(f"sparse/s{i:04d}.img", rnd.randbytes(65536) + bytes(size) + text(65536))
    i += 1
print(f"{len(made)} files, {written >> 20} MiB")
PY
log "building the image (zstd)"
"$strata" build "$work/tree" -o "$work/image" --compressor zstd --source-date-epoch 1 > "$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; fail "strata build failed"; }
rm -rf "$work/tree"
"$strata" export "$work/image/bootstrap" -o "$work/flat.img" > "$work/export.log" 2>&1 \
  || { cat "$work/export.log" >&2; fail "strata export failed"; }
device_bytes=$(stat -c %s "$work/flat.img")
want_sha=$(sha256sum < "$work/flat.img" | cut -d' ' -f1)
want_md5=$(md5sum < "$work/flat.img" | cut -d' ' -f1)
# The md5 of every whole MiB of the device, one a line: the guests check each block they read.
python3 - "$work/flat.img" > "$work/blocks.md5" <<'PY'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    while len(b := f.read(1 << 20)) == 1 << 20:
        print(hashlib.md5(b).hexdigest())
PY
blocks=$(wc -l < "$work/blocks.md5")
blob_bytes=$(du -cb "$work"/image/blobs/* | tail -n 1 | cut -f1)
log "image: device $((device_bytes >> 20)) MiB, blobs $((blob_bytes >> 20)) MiB (zstd), cache $cache per server"

# --- the servers --------------------------------------------------------------------------------
start() { # name, command...: runs it in the background, logging to $work/NAME.log; sets $started
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  started=$!
  pids+=("$started")
}
await_socket() { # name, path
  for _ in $(seq 300); do [ -S "$2" ] && return 0; sleep 0.2; done
  cat "$work/$1.log" >&2
  fail "$1 did not open $2 within 60 s"
}
servers=(nbd)
# JVM flags of the servers under test: a fixed heap (SOAK_HEAP, default 256m), touched at start,
# so that resident memory does not grow as G1 sizes its young generation. With the default heap (a
# quarter of RAM) and GCs minutes apart, G1 grew eden to 250 MB in a 30-minute soak before its
# first collection, and resident memory with it: growth that is no leak but that a leak could hide
# behind. With the heap fixed and resident, anonymous memory grows only if native memory does,
# and a heap leak shows in the heap left after each GC (logged here, one line per collection).
heap=${SOAK_HEAP:-256m}
jvmopts() { echo "${STRATA_JAVA_OPTS:+$STRATA_JAVA_OPTS }-Xms$heap -Xmx$heap -XX:+AlwaysPreTouch -Xlog:gc:file=$work/$1.gc.log"; }
STRATA_JAVA_OPTS=$(jvmopts nbd) start nbd "$strata" serve nbd "$work/image/bootstrap" --socket "$work/nbd.sock" --cache-size "$cache" --metrics-interval 30
declare -A pid_of=([nbd]=$started)
for g in $(seq 0 $((guests - 1))); do
  STRATA_JAVA_OPTS=$(jvmopts "vhost$g") start "vhost$g" "$strata" serve vhost-user "$work/image/bootstrap" --socket "$work/vhost$g.sock" --cache-size "$cache" --queues 2
  pid_of[vhost$g]=$started
  servers+=("vhost$g")
done
await_socket nbd "$work/nbd.sock"
for g in $(seq 0 $((guests - 1))); do await_socket "vhost$g" "$work/vhost$g.sock"; done
uri="nbd+unix:///?socket=$work/nbd.sock"
log "servers up: $(for s in "${servers[@]}"; do printf '%s=%s ' "$s" "${pid_of[$s]}"; done)"

# --- the guests' initramfs ------------------------------------------------------------------------
# A guest prints "SOAK start" once booted and then reads for MINUTES by its own clock; the host
# starts the NBD load and the clock when both have started, and waits for their final md5 after.
if [ "$guests" -gt 0 ]; then
  mkdir -p "$work/initrd"
  cp "$work/blocks.md5" "$work/initrd/blocks.md5"
  cat > "$work/initrd/test.sh" <<GUEST
#!/bin/sh
disk=/dev/vda
[ -b \$disk ] || { echo "SOAK no disk"; exit 1; }
echo "SOAK queues \$(ls /sys/block/vda/mq | wc -l)"
read up rest < /proc/uptime
stop=\$((\${up%.*} + $duration + 10))
echo "SOAK start"
n=0; bad=0
while :; do
  read up rest < /proc/uptime
  [ "\${up%.*}" -ge \$stop ] && break
  i=\$((RANDOM % $blocks))
  case \$((RANDOM % 3)) in 0) bs=4096 ;; 1) bs=65536 ;; *) bs=1048576 ;; esac
  count=\$((1048576 / bs))
  got=\$(dd if=\$disk bs=\$bs skip=\$((i * count)) count=\$count iflag=direct 2>/dev/null | md5sum)
  want=\$(sed -n "\$((i + 1))p" /blocks.md5)
  n=\$((n + 1))
  if [ "\${got%% *}" != "\$want" ]; then bad=\$((bad + 1)); echo "SOAK bad block \$i bs \$bs got \${got%% *} want \$want"; fi
  usleep 50000
done
echo "SOAK reads=\$n bad=\$bad"
sum=\$(md5sum \$disk)
echo "SOAK md5 \${sum%% *}"
GUEST
  chmod +x "$work/initrd/test.sh"
  (cd "$work/initrd" && find . | cpio -o -H newc --quiet) > "$work/extra.cpio"
  cat "$initramfs" > "$work/initrd.img"
  truncate -s %4 "$work/initrd.img"   # an appended plain cpio must start 4-byte aligned (init/initramfs.c)
  cat "$work/extra.cpio" >> "$work/initrd.img"
fi

# --- the load -----------------------------------------------------------------------------------
guest_pids=()
for g in $(seq 0 $((guests - 1))); do
  # guest1 has 2 vCPUs: virtio-blk uses at most one queue per CPU (virtblk's init_vq).
  start "guest$g" timeout -k 10 $((duration + 600)) "$qemu" -accel tcg -machine q35 -cpu max -smp $((g + 1)) -m 256M \
    -kernel "$kernel" -initrd "$work/initrd.img" -append "console=ttyS0 panic=-1 loglevel=3" \
    -nographic -no-reboot -nodefaults -serial stdio \
    -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
    -chardev socket,id=c0,path="$work/vhost$g.sock" -device vhost-user-blk-pci,chardev=c0,num-queues=$((g + 1))
  guest_pids+=("$started")
done
for g in $(seq 0 $((guests - 1))); do
  for _ in $(seq 1500); do
    grep -q "SOAK start" "$work/guest$g.log" 2>/dev/null && break
    kill -0 "${guest_pids[$g]}" 2>/dev/null || break
    sleep 0.2
  done
  grep -q "SOAK start" "$work/guest$g.log" || { tail -n 30 "$work/guest$g.log" >&2; fail "guest$g did not boot and start reading within 300 s"; }
done
[ "$guests" -eq 0 ] || log "guests booted and reading"
t0=$(date +%s)
end=$((t0 + duration))
log "load for $minutes min: $conns NBD connections (fio --rate_iops=$rate), $guests guest(s), churn and checks; sampling every ${interval} s"
start fio fio --name=soak --ioengine=nbd --uri="$uri" --thread --numjobs="$conns" --rw=randread \
  --bssplit=4k/40:16k/20:64k/20:256k/10:1m/10 --iodepth=1 --rate_iops="$rate" --startdelay=0-5 \
  --time_based --runtime="$((duration + 5))" --group_reporting --output-format=json --output="$work/fio.json"
fio_pid=$started
# Churn and whole-device checks, until the end. Each line of checks.log: "ok|BAD|ERR detail".
churn() {
  local next_check=$((t0 + 30)) now got
  while now=$(date +%s); [ "$now" -lt "$end" ]; do
    if [ "$now" -ge "$next_check" ] && [ $((end - now)) -gt 15 ]; then
      got=$(nbdcopy "$uri" - | sha256sum | cut -d' ' -f1) || got=error
      if [ "$got" = "$want_sha" ]; then echo "ok copy at $((now - t0)) s"; else echo "BAD copy at $((now - t0)) s: sha256 $got"; fi
      next_check=$((now + 30))
    fi
    if nbdinfo --size "$uri" > /dev/null 2>>"$work/churn.err"; then echo "ok connect"
    else echo "ERR nbdinfo at $((now - t0)) s: $(tail -n 1 "$work/churn.err")"; fi
    sleep 2
  done
}
churn > "$work/checks.log" 2>&1 &
churn_pid=$!
pids+=("$churn_pid")

# --- sampling -----------------------------------------------------------------------------------
header=$(printf '%6s' "t(s)"; for s in "${servers[@]}"; do printf ' | %-6s %5s %5s %4s %4s %4s %5s' "$s" RSS anon thr fds maps cpu; done)
echo "$header"
echo "(RSS: resident MiB; anon: its anonymous part (heap, native, stacks, cache); thr: threads; maps: lines of /proc/PID/maps; cpu: CPU seconds so far)"
hz=$(getconf CLK_TCK)
: > "$work/samples.tsv"
dead=
while :; do
  now=$(date +%s)
  row=$(printf '%6d' $((now - t0)))
  for s in "${servers[@]}"; do
    p=${pid_of[$s]}
    if ! status=$(cat "/proc/$p/status" 2>/dev/null) || ! fds=$(ls "/proc/$p/fd" 2>/dev/null | wc -l) \
       || ! maps=$(wc -l < "/proc/$p/maps" 2>/dev/null); then
      dead+=" $s"; row+=$(printf ' | %-6s %29s' "$s" DEAD); continue
    fi
    read -r rss anon thr < <(awk '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^Threads:/ {t=$2} END {print r, a, t}' <<< "$status")
    ticks=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)   # utime + stime (proc(5))
    printf '%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n' $((now - t0)) "$s" "$rss" "$anon" "$thr" "$fds" "$maps" $((ticks / hz)) >> "$work/samples.tsv"
    row+=$(printf ' | %-6s %5d %5d %4d %4d %4d %5d' "" $((rss / 1024)) $((anon / 1024)) "$thr" "$fds" "$maps" $((ticks / hz)))
  done
  echo "$row"
  [ -z "$dead" ] || break
  [ "$now" -lt "$end" ] || break
  sleep $(( interval < end - now ? interval : end - now ))
done
[ -z "$dead" ] || log "server(s) died:$dead"

# --- the end: load finishes, final checks -------------------------------------------------------
waitfor() { # pid, seconds: waits for the process to end; returns its status, or 124 on timeout
  local p=$1 s=$2
  for _ in $(seq $((s * 5))); do kill -0 "$p" 2>/dev/null || { wait "$p"; return $?; }; sleep 0.2; done
  return 124
}
status_fio=0; waitfor "$fio_pid" 120 || status_fio=$?
waitfor "$churn_pid" 120 || true
guest_status=()
for g in $(seq 0 $((guests - 1))); do
  st=0; waitfor "${guest_pids[$g]}" 600 || st=$?
  guest_status+=("$st")
done
log "load done; final whole-device check over NBD"
final_sha=$(nbdcopy "$uri" - | sha256sum | cut -d' ' -f1) || final_sha=error
for s in "${servers[@]}"; do kill -0 "${pid_of[$s]}" 2>/dev/null || dead+=" $s"; done

# --- verdicts -----------------------------------------------------------------------------------
guest_args=()
for g in $(seq 0 $((guests - 1))); do guest_args+=("$work/guest$g.log" "${guest_status[$g]}"); done
echo
echo "soak: $minutes min on $(nproc) CPUs, $(${JAVA_HOME:+$JAVA_HOME/bin/}java -version 2>&1 | head -n 1); device $((device_bytes >> 20)) MiB, cache $cache per server"
echo "nbd server's last metrics line: $(grep 'metrics:' "$work/nbd.log" | tail -n 1 | sed 's/.*metrics: //')"
python3 - "$work" "$work/samples.tsv" "$duration" "$work/fio.json" "$status_fio" "$work/checks.log" \
  "$want_sha" "$final_sha" "$want_md5" "${dead:-none}" "${guest_args[@]}" <<'PY'
import json, re, sys
work, samples, duration, fio_json, fio_status, checks, want_sha, final_sha, want_md5, dead = sys.argv[1:11]
duration, guests = int(duration), sys.argv[11:]
failed = []

rows = {}
for line in open(samples):
    t, proc, rss, anon, thr, fds, maps, cpu = line.split("\t")
    rows.setdefault(proc, []).append((int(t), int(rss) / 1024, int(anon) / 1024, int(thr), int(fds), int(maps), int(cpu)))
warm = 0.2 * duration
mid = warm + (duration - warm) / 2
metrics = [  # column, name, tolerance over the earlier maximum m, judged
    (2, "anon MiB", lambda m: max(0.10 * m, 32.0), True),
    (3, "threads", lambda m: max(0.05 * m, 4), True),
    (4, "fds", lambda m: max(0.05 * m, 4), True),
    (5, "maps", lambda m: max(0.05 * m, 8), True),
    (1, "RSS MiB", lambda m: max(0.10 * m, 32.0), False)]
print(f"\nflat = after a warm-up of {warm:.0f} s, max(t >= {mid:.0f} s) <= max({warm:.0f} s <= t < {mid:.0f} s) + tolerance")
print(f"{'process':<8} {'metric':<9} {'first':>8} {'max early':>10} {'max late':>9} {'tolerance':>9} {'slope/min':>9}  verdict")
for proc, r in rows.items():
    early = [x for x in r if warm <= x[0] < mid]
    late = [x for x in r if x[0] >= mid]
    if len(early) < 2 or len(late) < 2:
        print(f"{proc:<8} too few samples ({len(early)} early, {len(late)} late)"); failed.append(proc); continue
    judged = [x for x in r if x[0] >= warm]
    for i, name, tolerance, judge in metrics:
        e, l = max(x[i] for x in early), max(x[i] for x in late)
        tol = tolerance(e)
        n = len(judged); mt = sum(x[0] for x in judged) / n; mv = sum(x[i] for x in judged) / n
        var = sum((x[0] - mt) ** 2 for x in judged)
        slope = 60 * sum((x[0] - mt) * (x[i] - mv) for x in judged) / var if var else 0.0
        ok = l <= e + tol
        verdict = ("flat" if ok else "GROWING") if judge else ("(info) " + ("flat" if ok else "grew"))
        if judge and not ok:
            failed.append(f"{proc} {name}")
        print(f"{proc:<8} {name:<9} {judged[0][i]:8.1f} {e:10.1f} {l:9.1f} {tol:9.1f} {slope:+9.2f}  {verdict}")
    busy = (r[-1][6] - judged[0][6]) / max(1, r[-1][0] - judged[0][0])
    print(f"{proc:<8} CPU: {r[-1][6]} s in all, {100 * busy:.0f} % of a core after the warm-up")
    try:  # "[1.234s][info][gc] GC(7) Pause Young (Normal) (G1 Evacuation Pause) 24M->8M(256M) 3.456ms"
        after = [int(m.group(1)) for m in re.finditer(r"Pause.*?\d+M->(\d+)M\(", open(f"{work}/{proc}.gc.log").read())]
    except OSError:
        after = []
    if after:
        third = max(1, len(after) // 3)
        print(f"{proc:<8} GC: {len(after)} pauses; heap after GC: first {after[0]} MiB, max of the first third {max(after[:third])} MiB, "
              f"max of the last third {max(after[-third:])} MiB, last {after[-1]} MiB")
    else:
        print(f"{proc:<8} GC: no collection during the run")
if dead != "none":
    failed.append("server died:" + dead)

print()
try:
    text = open(fio_json).read()
    j = json.loads(text[text.index("{"):])["jobs"][0]
    rd = j["read"]
    print(f"NBD fio: {rd['total_ios']} reads, {rd['io_bytes'] / 2**20:.0f} MiB, {rd['iops']:.0f} IOPS, "
          f"mean latency {rd['clat_ns']['mean'] / 1e6:.2f} ms, p99 {rd['clat_ns']['percentile'].get('99.000000', 0) / 1e6:.2f} ms, "
          f"error {j['error']}, exit {fio_status}")
    if j["error"] or fio_status != "0" or rd["total_ios"] == 0:
        failed.append("fio")
except Exception as e:  # no JSON: fio failed before it ran
    print(f"NBD fio: no result ({e}), exit {fio_status}")
    failed.append("fio")

lines = [l.strip() for l in open(checks) if l.strip()]
copies = [l for l in lines if "copy" in l]
connects = sum(1 for l in lines if l == "ok connect")
bad = [l for l in lines if not l.startswith("ok")]
print(f"NBD churn: {connects} extra connections opened and closed; {len(copies)} whole-device copies during the run, "
      f"{sum(1 for l in copies if l.startswith('ok'))} equal to the export; {len(bad)} failures")
for l in bad[:10]:
    print("  " + l)
if bad or not copies or not connects:
    failed.append("NBD checks during the run")
final_ok = final_sha == want_sha
print(f"NBD final copy: sha256 {final_sha[:16]}... {'equals' if final_ok else 'DIFFERS from'} the export's")
if not final_ok:
    failed.append("NBD final copy")

for g in range(0, len(guests), 2):
    log, status = guests[g], guests[g + 1]
    text = open(log, encoding="latin-1").read().replace("\r", "")
    reads = re.search(r"SOAK reads=(\d+) bad=(\d+)", text)
    md5 = re.search(r"SOAK md5 ([0-9a-f]{32})", text)
    queues = re.search(r"SOAK queues (\d+)", text)
    ok = status == "0" and reads and md5 and reads.group(2) == "0" and int(reads.group(1)) > 0 and md5.group(1) == want_md5
    print(f"vhost-user guest{g // 2} ({queues.group(1) if queues else '?'} queue(s)): "
          f"{reads.group(1) + ' blocks read, ' + reads.group(2) + ' wrong' if reads else 'no result'}, "
          f"final md5 {'equals the export' if md5 and md5.group(1) == want_md5 else 'MISSING or DIFFERENT'}, qemu exit {status}"
          f"{'' if ok else '  FAILED'}")
    if not ok:
        failed.append(f"guest{g // 2}")
        print("  console tail:\n    " + "\n    ".join(text.splitlines()[-15:]))

print()
if failed:
    print("soak: FAILED: " + ", ".join(failed))
    sys.exit(1)
print("soak: PASSED: every metric flat, every check equal")
PY
