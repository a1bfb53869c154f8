#!/usr/bin/env bash
# Strata serving an image lazily from a registry, beside a full pull first and beside nbdkit curl,
# all through one shaping proxy in front of Debian's docker-registry on 127.0.0.1 (issue 9, "Speed").
#
#   bench/remote-vs-peers.sh [ROUNDS=1] [SETTINGS="0/0 20/50"]
#
# SETTINGS are DELAY_MS/RATE_MIB pairs for the proxy: a round trip added to every request and
# connection, and a bandwidth cap shared by all connections (0 = unlimited).
#
# The image: a copy of parts of this machine's /usr (>1 GiB, tens of thousands of files), built with
# `strata build` (defaults: zstd, 1 MiB chunks, BLAKE3) and exported as a flat EROFS device with
# `strata export`. Tree, image, device and the recorded workload are cached in $STRATA_BENCH_CACHE
# (default /var/tmp/strata-bench) and reused on reruns; REBUILD=1 makes them again.
# STRATA_BENCH_SOURCES (directories to copy) picks another tree, e.g. "/usr/include" for a quick try.
#
# Workloads, each on a fresh server with a cold cache:
#  (a) 5 % of the files, taken as whole directories chosen at random (seed $STRATA_BENCH_SEED, default 1),
#      as an application reads its own files. There is no /dev/nbd here, so the block ranges the
#      kernel reads for them are recorded once: the exported device is mounted with EROFS on a loop
#      device, the files are read with cat, and the loop device's block_rq_issue tracepoint lists the
#      requests (metadata, data and the kernel's readahead). They are replayed over NBD in that order
#      with $STRATA_BENCH_DEPTH (default 8) requests in flight (bench/nbd-replay.py, libnbd).
#  (b) the whole device, nbdcopy to null: (its defaults: 4 connections, 64 requests in flight).
# Contenders, alternating, each through the same proxy:
#  lazy      strata serve nbd REF with an empty --cache-dir (--prefetch table, the default; for (b)
#            also --prefetch all)
# STRATA_LAZY_ARGS: further `serve nbd` options for the lazy contenders (e.g. "--registry-connections 16").
# Variants for an A/B inside one alternating run: a lazy contender named CONTENDER@NAME (e.g.
#            STRATA_BENCH_A="lazy-recorded lazy-recorded@c1 pull") runs with the settings NAME has in
#            STRATA_LAZY_VARIANTS='NAME=SETTING ...|NAME2=...', each SETTING an environment assignment
#            (STRATA_JAVA_OPTS=-XX:TieredStopAtLevel=1, STRATA_BIN=/other/checkout/bin/strata) or, if it
#            starts with '-', more `serve nbd` options (a NAME given twice gets both values, e.g. two
#            JVM flags); printed as pull/CONTENDER@NAME ratios.
#  lazy-recorded  (a) only, not run unless named in STRATA_BENCH_A: the same tree built with
#            `strata build --prefetch LIST`, LIST = every file (a) reads (a prefetch table recorded
#            for this very workload, the favourable case), pushed as bench/tree-recorded and served
#            like lazy-table; (a) is recorded again on its device (the table moves the metadata)
#  daemon    (a) only, named in STRATA_BENCH_A: the daemon (`strata serve --control`, started before
#            the clock, as a host's service is) adds bench/tree-recorded by reference through its control
#            API (empty --cache-dir); timed from the POST to the end of the replay. Its JVM has started
#            but served nothing yet.
#  daemon-warm  the same, the daemon having served another image first (bench/warm, a build of
#            $STRATA_BENCH_WARM, default /usr/lib/python3: read whole, then removed; its own blob, so
#            nothing of it is in the cache): a host that already runs containers. Its JIT is warm.
#  pull      skopeo copy docker://REF dir:..., unpack the bootstrap layer, strata serve nbd on the
#            local copy; the pull is part of the time
#  nbdkit    nbdkit --filter=readahead --filter=cache curl, serving the flat device `strata export`
#            wrote, uploaded to the same registry as one blob (POST + PUT)
# Time to first byte: from starting the contender (the pull included) to the first 4 KiB read over NBD.
# Needs root (loop mount and tracefs, only while recording (a)), docker-registry, skopeo, nbdkit,
# nbdcopy, python3-libnbd. Every process it starts is stopped on exit; nothing is left in the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
settings=${2:-"0/0 20/50"}
cache=${STRATA_BENCH_CACHE:-/var/tmp/strata-bench}
sources=${STRATA_BENCH_SOURCES:-"/usr/share /usr/lib/jvm /usr/include /usr/lib/python3 /usr/lib/python3.11"}
seed=${STRATA_BENCH_SEED:-1}
depth=${STRATA_BENCH_DEPTH:-8}
percent=5
py=/usr/bin/python3   # Debian's python: python3-libnbd installs the nbd module for it (not for a pyenv one)
step_timeout=${STRATA_BENCH_TIMEOUT:-1200}   # seconds any one step (a pull, a whole-device read) may take

log() { echo "[$(date -u +%T)] $*" >&2; }
die() { echo "remote-vs-peers: $*" >&2; exit 1; }

for t in docker-registry skopeo nbdkit nbdcopy curl java; do
  command -v $t >/dev/null || die "need $t (scripts/install-deps.sh; python3-libnbd for the NBD client)"
done
"$py" -c 'import nbd' 2>/dev/null || die "need python3-libnbd (apt-get install python3-libnbd)"
[ -f cli/target/lib/core-blockmap-0.1.0-SNAPSHOT.jar ] && ls cli/target/cli-*.jar >/dev/null 2>&1 \
  || { log "building the CLI (mvn -pl cli -am package)"; mvn -B -q -o -DskipTests -pl cli -am package; }

key=$(echo "$sources" | md5sum | cut -c1-8)
data=$cache/$key
mkdir -p "$data"
work=$(mktemp -d "$cache/run.XXXXXX")
pids=()
loopdev=
mnt=
trace=
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  wait 2>/dev/null
  [ -n "$mnt" ] && mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$loopdev" ] && losetup -d "$loopdev"
  [ -n "$trace" ] && [ -d "$trace" ] && { echo 0 > "$trace/tracing_on"; echo 0 > "$trace/events/block/block_rq_issue/enable"; rmdir "$trace"; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() { local keep=() p; for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; pids=("${keep[@]}"); }
# bounded CMD...: runs CMD under the step timeout, in the background so that a signal to this script
# runs the cleanup at once (bash runs traps only between foreground commands, but during a wait).
bounded() {
  timeout "$step_timeout" "$@" &
  local p=$! rc=0
  pids+=("$p")
  wait "$p" || rc=$?
  forget "$p"
  return $rc
}
# stop PID: SIGTERM, SIGKILL after 5 s, reap it and forget it (so cleanup never signals a reused pid).
stop() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
calc() { "$py" -c "print(f'{$1:.3f}')"; }

# ---------------------------------------------------------------- the tree, the image, the device
if [ "${REBUILD:-0}" = 1 ]; then rm -rf "${data:?}"/*; fi
if [ ! -f "$data/tree.done" ]; then
  log "copying $sources to $data/tree"
  rm -rf "$data/tree"; mkdir -p "$data/tree"
  for s in $sources; do cp -a "$s" "$data/tree/$(echo "${s#/}" | tr / _)"; done
  touch "$data/tree.done"
fi
if [ ! -f "$data/image.done" ]; then
  log "strata build $data/tree"
  rm -rf "$data/image"
  bounded bin/strata build "$data/tree" -o "$data/image" --source-date-epoch 0 > "$work/build.log" 2>&1 || die "build failed: $(tail -n 5 "$work/build.log")"
  tail -n 3 "$work/build.log" >&2
  touch "$data/image.done"
fi
if [ ! -f "$data/flat.done" ]; then
  log "strata export -> $data/flat.img"
  bounded bin/strata export "$data/image/bootstrap" -D "$data/image/blobs" -o "$data/flat.img" >/dev/null
  sha256sum "$data/flat.img" | cut -d' ' -f1 > "$data/flat.sha256"
  touch "$data/flat.done"
fi
flat_digest=$(cat "$data/flat.sha256")

# record_a FLAT BOOTSTRAP PREFIX: reads the files of (a) from FLAT (EROFS on a loop device) and writes
# PREFIX-ranges.txt (the block requests the kernel issued, in order), PREFIX-files.txt (files, bytes)
# and PREFIX-chunks.txt (the chunks those ranges touch, bench/ChunkBytes.java on BOOTSTRAP).
record_a() {
  local flat=$1 boot=$2 out=$3 devt
  [ "$(id -u)" = 0 ] || die "recording workload (a) needs root (loop mount, tracefs)"
  log "recording the block ranges of reading them from $flat (EROFS on a loop device)"
  [ -d /sys/kernel/tracing/instances ] || mount -t tracefs nodev /sys/kernel/tracing
  mnt=$work/mnt; mkdir -p "$mnt"
  loopdev=$(losetup -r -f --show "$flat")
  devt=$(( (0x$(stat -c %t "$loopdev") << 20) | 0x$(stat -c %T "$loopdev") ))
  trace=/sys/kernel/tracing/instances/strata-bench-$$
  mkdir "$trace"
  echo 65536 > "$trace/buffer_size_kb"
  echo "dev == $devt" > "$trace/events/block/block_rq_issue/filter"
  echo 1 > "$trace/events/block/block_rq_issue/enable"
  echo 1 > "$trace/tracing_on"
  mount -t erofs -o ro "$loopdev" "$mnt"
  (cd "$mnt" && while IFS= read -r d; do find "$d" -maxdepth 1 -type f -exec cat {} + ; done < "$data/a-dirs.txt") > /dev/null
  (cd "$mnt" && while IFS= read -r d; do find "$d" -maxdepth 1 -type f -printf '%s\n'; done < "$data/a-dirs.txt") \
    | awk '{n++; b+=$1} END {print n, b}' > "$out-files.txt"
  umount "$mnt"
  echo 0 > "$trace/tracing_on"
  "$py" - "$trace/trace" > "$out-ranges.txt" <<'PY'
import re, sys
pat = re.compile(r"block_rq_issue: \d+,\d+ (\S+) \d+ \(.*?\) (\d+) \+ (\d+)")
for line in open(sys.argv[1]):
    m = pat.search(line)
    if m and "R" in m.group(1) and int(m.group(3)) > 0:
        print(int(m.group(2)) * 512, int(m.group(3)) * 512)
PY
  grep -q 'LOST' "$trace/trace" && die "the trace buffer overflowed"
  echo 0 > "$trace/events/block/block_rq_issue/enable"; rmdir "$trace"; trace=
  losetup -d "$loopdev"; loopdev=
  [ -s "$out-ranges.txt" ] || die "no block requests recorded"
  java -cp "cli/target/lib/*" bench/ChunkBytes.java "$boot" "$out-ranges.txt" > "$out-chunks.txt"
}

# ---------------------------------------------------------------- workload (a): choose and record
if [ ! -f "$data/a.done" ]; then
  log "choosing $percent % of the files as whole directories (seed $seed)"
  "$py" - "$data/tree" "$seed" "$percent" > "$data/a-dirs.txt" <<'PY'
import os, random, sys
root, seed, percent = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
dirs = []
for d, _, files in os.walk(root):
    n = sum(1 for f in files if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)))
    if n:
        dirs.append((os.path.relpath(d, root), n))
dirs.sort()
total = sum(n for _, n in dirs)
random.Random(seed).shuffle(dirs)
chosen, count = [], 0
for d, n in dirs:
    if count >= total * percent / 100:
        break
    chosen.append(d)
    count += n
print("\n".join(chosen))
PY
  record_a "$data/flat.img" "$data/image/bootstrap" "$data/a"
  touch "$data/a.done"
fi

# STRATA_BENCH_A / STRATA_BENCH_B pick the contenders of each workload (e.g. STRATA_BENCH_B="" skips (b)).
read -r -a a_contenders <<<"${STRATA_BENCH_A-lazy-table pull nbdkit}"
read -r -a b_contenders <<<"${STRATA_BENCH_B-lazy-table lazy-all pull nbdkit}"
recorded=0
warm=0
for c in "${a_contenders[@]}"; do
  case ${c%@*} in lazy-recorded | daemon) recorded=1 ;; daemon-warm) recorded=1 warm=1 ;; esac
done
for c in "${b_contenders[@]}"; do
  case ${c%@*} in lazy-recorded | daemon | daemon-warm) die "${c%@*} is a contender of workload (a) only" ;; esac
done
declare -A variant_env=() variant_args=()
IFS='|' read -r -a variant_specs <<<"${STRATA_LAZY_VARIANTS:-}"
for v in "${variant_specs[@]}"; do
  v=${v#"${v%%[![:space:]]*}"}; [ -n "$v" ] || continue
  name=${v%%=*}; rest=${v#*=}
  for w in $rest; do
    case $w in -*) variant_args[$name]+=" $w" ;; *=*) variant_env[$name]+=" $w" ;; *) die "STRATA_LAZY_VARIANTS: '$w' in $name is neither NAME=VALUE nor an option" ;; esac
  done
done
for c in "${a_contenders[@]}" "${b_contenders[@]}"; do
  case $c in
    *@*) [ -n "${variant_env[${c#*@}]:-}${variant_args[${c#*@}]:-}" ] || die "$c: no variant ${c#*@} in STRATA_LAZY_VARIANTS" ;;
  esac
done

# ------------------------------------------------- (a) lazy-recorded: the image with a recorded prefetch table
# The same tree built with `--prefetch LIST`, LIST being every file (a) reads, as a Nydus user ships
# an image with the prefetch list recorded from the application's start. The table moves the metadata
# (it sits before it), so the device differs from flat.img: (a) is recorded again on this image's device.
if [ $recorded = 1 ] && [ ! -f "$data/recorded.done" ]; then
  (cd "$data/tree" && while IFS= read -r d; do find "$d" -maxdepth 1 -type f; done < "$data/a-dirs.txt") > "$data/a-prefetch.txt"
  log "strata build --prefetch a-prefetch.txt ($(wc -l < "$data/a-prefetch.txt") files) $data/tree"
  rm -rf "$data/image-recorded"
  bounded bin/strata build "$data/tree" -o "$data/image-recorded" --source-date-epoch 0 --prefetch "$data/a-prefetch.txt" \
    > "$data/build-recorded.log" 2>&1 || die "build failed: $(tail -n 5 "$data/build-recorded.log")"
  log "build: $(grep -c 'prefetch:' "$data/build-recorded.log" || true) prefetch warnings (empty files left out); $(tail -n 1 "$data/build-recorded.log")"
  bounded bin/strata export "$data/image-recorded/bootstrap" -D "$data/image-recorded/blobs" -o "$work/flat-recorded.img" >/dev/null
  record_a "$work/flat-recorded.img" "$data/image-recorded/bootstrap" "$data/a-recorded"
  rm -f "$work/flat-recorded.img"
  touch "$data/recorded.done"
fi

# daemon-warm's first image: another tree, its own blob (nothing of it is in the timed image's cache).
warm_source=${STRATA_BENCH_WARM:-/usr/lib/python3}
if [ $warm = 1 ] && [ ! -f "$data/warm.done" ]; then
  [ -d "$warm_source" ] || die "STRATA_BENCH_WARM: $warm_source is not a directory"
  log "strata build $warm_source (daemon-warm's first image)"
  rm -rf "$data/warm-image"
  bounded bin/strata build "$warm_source" -o "$data/warm-image" --source-date-epoch 0 > "$work/build-warm.log" 2>&1 \
    || die "build failed: $(tail -n 5 "$work/build-warm.log")"
  touch "$data/warm.done"
fi

read -r a_files a_file_bytes < "$data/a-files.txt"
a_ranges=$(wc -l < "$data/a-ranges.txt")
a_range_bytes=$(awk '{b+=$2} END {print b}' "$data/a-ranges.txt")
chunk_line=$(cat "$data/a-chunks.txt")
val() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$2"; }
a_compressed=$(val compressed_bytes "$chunk_line")
total_files=$(find "$data/tree" -type f | wc -l)
tree_bytes=$(du -sb --apparent-size "$data/tree" | cut -f1)
blob_bytes=$(du -cb "$data"/image/blobs/* | tail -n 1 | cut -f1)
device_bytes=$(stat -c %s "$data/flat.img")
log "tree: $total_files files, $((tree_bytes >> 20)) MiB; blob $((blob_bytes >> 20)) MiB compressed; device $((device_bytes >> 20)) MiB"
log "(a): $(wc -l < "$data/a-dirs.txt") directories, $a_files files, $((a_file_bytes >> 20)) MiB; $a_ranges block requests, $((a_range_bytes >> 20)) MiB; $chunk_line"
rec_line= rec_compressed=0 boot_layer_recorded=0
if [ $recorded = 1 ]; then
  rec_line="$(wc -l < "$data/a-recorded-ranges.txt") NBD reads ($(( $(awk '{b+=$2} END {print b}' "$data/a-recorded-ranges.txt") >> 20 )) MiB) touching $(cat "$data/a-recorded-chunks.txt")"
  rec_compressed=$(val compressed_bytes "$(cat "$data/a-recorded-chunks.txt")")
  log "(a) on the image with the recorded prefetch table ($(wc -l < "$data/a-prefetch.txt") files listed): $rec_line"
fi

[ "$rounds" = 0 ] && { log "prepared; ROUNDS=0: no runs"; exit 0; }

# ---------------------------------------------------------------- registry, proxy, push
reg_port=$(free_port)
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry/storage" "$reg_port" > "$work/registry/config.yml"
env $(env | sed -n 's/^\(REGISTRY_[^=]*\)=.*/-u \1/p') docker-registry serve "$work/registry/config.yml" > "$work/registry/log" 2>&1 &
pids+=($!)
proxy_port=$(free_port)
ctl_port=$(free_port)
"$py" bench/shaping-proxy.py "$proxy_port" "$reg_port" "$ctl_port" > "$work/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do curl -fs "http://127.0.0.1:$reg_port/v2/" >/dev/null && curl -fs "http://127.0.0.1:$ctl_port/stats" >/dev/null && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$ctl_port/stats" >/dev/null || die "the registry or the proxy did not start: $(cat "$work/registry/log" "$work/proxy.log")"
log "registry 127.0.0.1:$reg_port, shaping proxy 127.0.0.1:$proxy_port"

log "strata push (straight to the registry)"
bounded bin/strata push "$data/image" "127.0.0.1:$reg_port/bench/tree:latest" > "$work/push.log" 2>&1 || die "push failed: $(tail -n 5 "$work/push.log")"
log "uploading the flat device as one blob (POST + PUT)"
location=$(curl -fsS -X POST -D - -o /dev/null "http://127.0.0.1:$reg_port/v2/bench/flat/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
case $location in http*) ;; *) location="http://127.0.0.1:$reg_port$location" ;; esac
case $location in *\?*) sep='&' ;; *) sep='?' ;; esac
bounded curl -fsS -T "$data/flat.img" -H 'Content-Type: application/octet-stream' "$location${sep}digest=sha256:$flat_digest" >/dev/null
# The bootstrap layer's size: Strata's registry byte count less this is the chunk data it fetched.
boot_layer_bytes=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$reg_port/v2/bench/tree/manifests/latest" \
  | "$py" -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"] if (l.get("annotations") or {}).get("containerd.io/snapshot/nydus-bootstrap")))')
ref=127.0.0.1:$proxy_port/bench/tree:latest
if [ $recorded = 1 ]; then
  log "strata push of the image with the recorded prefetch table"
  bounded bin/strata push "$data/image-recorded" "127.0.0.1:$reg_port/bench/tree-recorded:latest" > "$work/push-recorded.log" 2>&1 \
    || die "push failed: $(tail -n 5 "$work/push-recorded.log")"
  boot_layer_recorded=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$reg_port/v2/bench/tree-recorded/manifests/latest" \
    | "$py" -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"] if (l.get("annotations") or {}).get("containerd.io/snapshot/nydus-bootstrap")))')
fi
ref_recorded=127.0.0.1:$proxy_port/bench/tree-recorded:latest
if [ $warm = 1 ]; then
  log "strata push of daemon-warm's first image"
  bounded bin/strata push "$data/warm-image" "127.0.0.1:$reg_port/bench/warm:latest" > "$work/push-warm.log" 2>&1 \
    || die "push failed: $(tail -n 5 "$work/push-warm.log")"
fi
ref_warm=127.0.0.1:$proxy_port/bench/warm:latest
flat_url=http://127.0.0.1:$proxy_port/v2/bench/flat/blobs/sha256:$flat_digest

# ---------------------------------------------------------------- one contender, one workload
shape() { curl -fsS "http://127.0.0.1:$ctl_port/shape?delay_ms=$1&rate_mib=$2" >/dev/null; }
proxy_stats() { curl -fsS "http://127.0.0.1:$ctl_port/$1"; }

# run SETTING WORKLOAD CONTENDER ROUND: appends one line to $work/results
run() {
  local setting=$1 workload=$2 contender=$3 round=$4
  local d=$work/c; rm -rf "$d"; mkdir -p "$d"
  local ranges=$data/a-ranges.txt
  local kind=${contender%@*} venv=() vargs= strata=bin/strata
  if [[ $contender == *@* ]]; then
    # NAME=VALUE words; a NAME given twice gets both values, space-separated (several JVM flags)
    local -A vals=()
    local w
    for w in ${variant_env[${contender#*@}]:-}; do
      vals[${w%%=*}]="${vals[${w%%=*}]:+${vals[${w%%=*}]} }${w#*=}"
    done
    for w in "${!vals[@]}"; do venv+=("$w=${vals[$w]}"); done
    vargs=${variant_args[${contender#*@}]:-}
  fi
  for e in "${venv[@]}"; do [[ $e == STRATA_BIN=* ]] && strata=${e#STRATA_BIN=}; done
  case $kind in lazy-recorded | daemon*) ranges=$data/a-recorded-ranges.txt ;; esac
  local sock=$d/nbd.sock uri="nbd+unix:///?socket=$d/nbd.sock" server= t0 first work_s extra=
  if [[ $kind == daemon* ]]; then
    # Before the clock: the daemon starts (and, for daemon-warm, serves another image whole).
    local ctl=$d/control.sock
    env "${venv[@]}" "$strata" serve --control "$ctl" --socket "$sock" --cache-dir "$d/cache" --metrics-interval 1 \
      ${STRATA_LAZY_ARGS:-} $vargs > "$d/log" 2>&1 &
    server=$!
    pids+=($server)
    for _ in $(seq 300); do curl -fs --unix-socket "$ctl" http://strata/api/v1/exports >/dev/null 2>&1 && break; sleep 0.05; done
    curl -fs --unix-socket "$ctl" http://strata/api/v1/exports >/dev/null || die "$contender: the daemon did not start: $(tail -n 5 "$d/log")"
    if [ "$kind" = daemon-warm ]; then
      bounded curl -fsS --unix-socket "$ctl" -X POST -d "{\"kind\": \"nbd\", \"name\": \"warm\", \"source\": \"$ref_warm\"}" \
        http://strata/api/v1/exports >/dev/null || die "$contender: adding the warm-up image failed: $(tail -n 5 "$d/log")"
      bounded nbdcopy "nbd+unix:///warm?socket=$sock" null: || die "$contender: reading the warm-up image failed"
      bounded curl -fsS --unix-socket "$ctl" -X DELETE http://strata/api/v1/exports/warm >/dev/null || die "$contender: removing warm failed"
    fi
    uri="nbd+unix:///img?socket=$sock"
  fi
  proxy_stats reset >/dev/null
  t0=$(now)
  case $kind in
    daemon*)
      bounded curl -fsS --unix-socket "$ctl" -X POST -d "{\"kind\": \"nbd\", \"name\": \"img\", \"source\": \"$ref_recorded\"}" \
        http://strata/api/v1/exports >/dev/null || die "$contender: adding the image failed: $(tail -n 5 "$d/log")"
      ;;
    lazy-recorded)
      env "${venv[@]}" "$strata" serve nbd "$ref_recorded" --cache-dir "$d/cache" --socket "$sock" --metrics-interval 1 ${STRATA_LAZY_ARGS:-} $vargs > "$d/log" 2>&1 &
      ;;
    lazy-*)
      env "${venv[@]}" "$strata" serve nbd "$ref" --cache-dir "$d/cache" --prefetch "${kind#lazy-}" --socket "$sock" --metrics-interval 1 ${STRATA_LAZY_ARGS:-} $vargs > "$d/log" 2>&1 &
      ;;
    pull)
      bounded skopeo copy -q --src-tls-verify=false "docker://$ref" "dir:$d/pull" > "$d/skopeo.log" 2>&1 \
        || die "skopeo copy failed: $(tail -n 3 "$d/skopeo.log")"
      local boot_layer
      boot_layer=$("$py" -c 'import json,sys; m=json.load(open(sys.argv[1])); print([l["digest"].split(":")[1] for l in m["layers"] if (l.get("annotations") or {}).get("containerd.io/snapshot/nydus-bootstrap")][0])' "$d/pull/manifest.json")
      tar -xzf "$d/pull/$boot_layer" -C "$d/pull" image/image.boot
      bin/strata serve nbd "$d/pull/image/image.boot" -D "$d/pull" --socket "$sock" --metrics-interval 1 > "$d/log" 2>&1 &
      ;;
    nbdkit)
      TMPDIR=$d nbdkit -f -r -U "$sock" --filter=readahead --filter=cache curl "url=$flat_url" cache-on-read=true > "$d/log" 2>&1 &
      ;;
  esac
  if [ -z "$server" ]; then
    server=$!
    pids+=($server)
  fi
  bounded "$py" bench/nbd-replay.py first "$uri" 240 > "$d/first" || die "$contender did not serve: $(tail -n 5 "$d/log")"
  first=$(cat "$d/first")
  local t1 t2 nbd_bytes=0 nbd_reqs=0
  t1=$(now)
  if [ "$workload" = a ]; then
    bounded "$py" bench/nbd-replay.py replay "$uri" "$ranges" "$depth" > "$d/replay" \
      || die "$contender: replay failed: $(tail -n 5 "$d/log")"
    read -r work_s nbd_bytes nbd_reqs < "$d/replay"
  else
    bounded nbdcopy "$uri" null: || die "$contender: nbdcopy failed: $(tail -n 5 "$d/log")"
    t2=$(now)
    work_s=$(calc "$t2 - $t1")
  fi
  local ps
  ps=$(proxy_stats stats)
  if [[ $kind != nbdkit ]]; then
    # The metrics line comes every second: wait for one written after the workload.
    local n; n=$(grep -c 'metrics:' "$d/log" || true)
    for _ in $(seq 40); do [ "$(grep -c 'metrics:' "$d/log" || true)" -gt "$n" ] && break; sleep 0.1; done
    extra=$(grep 'metrics:' "$d/log" | tail -n 1 | sed 's/.*metrics: //')
    # The daemon's registry counters include the warm-up image: only the proxy's counts (reset at t0) hold.
    [ "$kind" = daemon-warm ] && extra=
  fi
  stop "$server"
  "$py" - "$setting" "$workload" "$contender" "$round" "$t0" "$first" "$work_s" "$ps" "$extra" >> "$work/results" <<'PY'
import json, re, sys, time
setting, workload, contender, rnd, t0, first, work_s, ps, extra = sys.argv[1:]
ps = json.loads(ps)
# Strata's metrics line: "...; registry=HOST requests=N bytes=N retries=N ..." (manifest, bootstrap layer, chunks)
m = re.search(r"registry=\S+ requests=(\d+) bytes=(\d+)", extra)
ttfb = float(first) - float(t0)
r = dict(setting=setting, workload=workload, contender=contender, round=int(rnd), ttfb=ttfb,
         work=float(work_s), total=ttfb + float(work_s), bytes=ps["bytes_down"], requests=ps["requests"],
         range_requests=ps["range_requests"], connections=ps["connections"],
         strata_requests=int(m.group(1)) if m else -1, strata_bytes=int(m.group(2)) if m else -1, metrics=extra)
print(json.dumps(r))
print(time.strftime("[%H:%M:%S]", time.gmtime()), f"  {setting} ({workload}) {contender}: ttfb {ttfb:.2f} s, work {float(work_s):.2f} s, "
      f"total {r['total']:.2f} s, {r['bytes'] / 2**20:.1f} MiB in {r['requests']} requests over {r['connections']} connections",
      file=sys.stderr)
PY
  cp "$d/log" "$data/logs/${setting/\//-}-$workload-${contender/@/-}-$round.log"
  rm -rf "$d"
}

# ---------------------------------------------------------------- the runs, alternating
rm -rf "$data/logs"; mkdir -p "$data/logs"   # each contender's server log of the last run
for r in $(seq "$rounds"); do
  for s in $settings; do
    shape "${s%/*}" "${s#*/}"
    log "round $r/$rounds, ${s%/*} ms / ${s#*/} MiB/s (0 = unlimited)"
    n=${#a_contenders[@]}
    for ((i = 0; i < n; i++)); do run "$s" a "${a_contenders[$(( (i + r - 1) % n ))]}" "$r"; done
    n=${#b_contenders[@]}
    for ((i = 0; i < n; i++)); do run "$s" b "${b_contenders[$(( (i + r - 1) % n ))]}" "$r"; done
  done
done

# ---------------------------------------------------------------- the table
echo
echo "remote-vs-peers, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(java -version 2>&1 | head -n 1)"
echo "image: $total_files files, $((tree_bytes >> 20)) MiB ($sources); blob $((blob_bytes >> 20)) MiB (zstd, 1 MiB chunks); device $((device_bytes >> 20)) MiB"
echo "(a): $(wc -l < "$data/a-dirs.txt") directories (seed $seed), $a_files files, $((a_file_bytes >> 20)) MiB; replayed as $a_ranges NBD reads ($((a_range_bytes >> 20)) MiB) at depth $depth; they touch $chunk_line"
[ -n "$rec_line" ] && echo "(a) lazy-recorded: the same tree built with --prefetch listing the $(wc -l < "$data/a-prefetch.txt") files (a) reads; replayed as $rec_line"
"$py" - "$work/results" "$a_compressed" "$boot_layer_bytes" "$rec_compressed" "$boot_layer_recorded" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
a_compressed, boot_layer = int(sys.argv[2]), int(sys.argv[3])
rec_compressed, boot_layer_rec = int(sys.argv[4]), int(sys.argv[5])
nan = float("nan")
def med(setting, workload, contender, key):
    v = [r[key] for r in rows if (r["setting"], r["workload"], r["contender"]) == (setting, workload, contender) and r[key] >= 0]
    return statistics.median(v) if v else nan
settings = list(dict.fromkeys(r["setting"] for r in rows))
n = max(r["round"] for r in rows)
print(f"setting = delay ms / MiB/s (0 = unlimited); medians of {n} round(s); total = time to first byte + workload")
print("MiB, requests, conns: as the proxy counted them; strata MiB/reqs: Strata's own registry counters (metrics line)")
print(f"{'setting':<8} {'wl':<2} {'contender':<13} {'ttfb s':>7} {'work s':>7} {'total s':>8} {'MiB':>8} {'requests':>8} {'conns':>5} {'strata MiB':>10} {'strata reqs':>11}")
for s in settings:
    for w in ("a", "b"):
        for c in dict.fromkeys(r["contender"] for r in rows if r["workload"] == w):
            print(f"{s:<8} {w:<2} {c:<13} {med(s, w, c, 'ttfb'):7.2f} {med(s, w, c, 'work'):7.2f} {med(s, w, c, 'total'):8.2f} "
                  f"{med(s, w, c, 'bytes') / 2**20:8.1f} {med(s, w, c, 'requests'):8.0f} {med(s, w, c, 'connections'):5.0f} "
                  f"{med(s, w, c, 'strata_bytes') / 2**20:10.1f} {med(s, w, c, 'strata_requests'):11.0f}")
print()
for s in settings:
    goal = s == "20/50"
    def mark(ratio, ok):
        if not goal:
            return ""
        return " (not run)" if ratio != ratio else " MET" if ok else " MISSED"
    lazy_a, pull_a, kit_a = (med(s, "a", c, "total") for c in ("lazy-table", "pull", "nbdkit"))
    print(f"{s}: (a) total time pull/lazy {pull_a / lazy_a:.2f}x (goal >= 5x){mark(pull_a / lazy_a, pull_a / lazy_a >= 5)}; "
          f"nbdkit/lazy {kit_a / lazy_a:.2f}x (goal >= 2x){mark(kit_a / lazy_a, kit_a / lazy_a >= 2)}")
    chunk_bytes = med(s, "a", "lazy-table", "strata_bytes") - boot_layer
    print(f"{s}: (a) lazy fetched {chunk_bytes / 2**20:.1f} MiB of chunk data (registry bytes less the {boot_layer / 2**20:.1f} MiB "
          f"bootstrap layer) for chunks of {a_compressed / 2**20:.1f} MiB compressed: {chunk_bytes / a_compressed:.2f}x "
          f"(goal <= 2x){mark(chunk_bytes / a_compressed, chunk_bytes / a_compressed <= 2)}")
    def per_round(contender):
        """pull/CONTENDER of each round (the same round's pull): the spread the medians hide."""
        out = []
        for rnd in sorted({r["round"] for r in rows}):
            p = [r["total"] for r in rows if (r["setting"], r["workload"], r["contender"], r["round"]) == (s, "a", "pull", rnd)]
            c = [r["total"] for r in rows if (r["setting"], r["workload"], r["contender"], r["round"]) == (s, "a", contender, rnd)]
            if p and c:
                out.append(f"{p[0] / c[0]:.2f}")
        return " ".join(out)
    for c in ("lazy-table", "lazy-recorded", "daemon", "daemon-warm"):
        if per_round(c):
            print(f"{s}: (a) pull/{c} per round: {per_round(c)}")
    rec_a = med(s, "a", "lazy-recorded", "total")
    if rec_a == rec_a:
        print(f"{s}: (a) total time pull/lazy-recorded {pull_a / rec_a:.2f}x (goal >= 5x){mark(pull_a / rec_a, pull_a / rec_a >= 5)}; "
              f"nbdkit/lazy-recorded {kit_a / rec_a:.2f}x (goal >= 2x){mark(kit_a / rec_a, kit_a / rec_a >= 2)}")
        rec_bytes = med(s, "a", "lazy-recorded", "strata_bytes") - boot_layer_rec
        print(f"{s}: (a) lazy-recorded fetched {rec_bytes / 2**20:.1f} MiB of chunk data (less its {boot_layer_rec / 2**20:.1f} MiB "
              f"bootstrap layer) for chunks of {rec_compressed / 2**20:.1f} MiB compressed: {rec_bytes / rec_compressed:.2f}x "
              f"(goal <= 2x){mark(rec_bytes / rec_compressed, rec_bytes / rec_compressed <= 2)}")
    for c in ("daemon", "daemon-warm"):
        v = med(s, "a", c, "total")
        if v == v:
            print(f"{s}: (a) total time pull/{c} {pull_a / v:.2f}x (goal >= 5x){mark(pull_a / v, pull_a / v >= 5)}; "
                  f"nbdkit/{c} {kit_a / v:.2f}x (goal >= 2x){mark(kit_a / v, kit_a / v >= 2)}")
    for c in dict.fromkeys(r["contender"] for r in rows if r["workload"] == "a" and "@" in r["contender"]):
        v = med(s, "a", c, "total")
        print(f"{s}: (a) total time pull/{c} {pull_a / v:.2f}x (variant)")
    pull_b = med(s, "b", "pull", "total")
    for c in ("lazy-table", "lazy-all"):
        lb = med(s, "b", c, "total")
        print(f"{s}: (b) total time {c}/pull {lb / pull_b:.2f}x (goal <= 1.3x){mark(lb / pull_b, lb / pull_b <= 1.3)}")
    print(f"{s}: (b) total time nbdkit/pull {med(s, 'b', 'nbdkit', 'total') / pull_b:.2f}x")
PY
cp "$work/results" "$data/last-results.jsonl"   # every run, as measured
