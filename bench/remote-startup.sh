#!/usr/bin/env bash
# Start-up of `strata serve nbd REF` from a registry (issue 9, "Speed", goal (a)'s time to first byte):
# Debian's docker-registry on 127.0.0.1 (optionally behind bench/shaping-proxy.py), an image pushed to
# it once, then starts with an empty --cache-dir each, in alternating rounds. For each start, from
# just before exec:
#   listen  - until the unix socket accepts a connection (polled every 1 ms),
#   read    - until a 4 KiB read at offset 0 has its answer (a raw NBD client: handshake + one read;
#             the first chunk fetched from the registry),
#   cpu     - the server's CPU time (user + system) at that moment, in ms,
#   resolve, boot, after - from the server's "REF: resolved in N ms, bootstrap layer ... in M ms;
#             T ms after the process started" line.
# Prints each start and the medians per variant.
#
#   bench/remote-startup.sh [ROUNDS=5] [IMAGE_DIR]   IMAGE_DIR: a `strata build` output (default: a
#                                        small image of /usr/include built into the work directory)
#   SHAPE=20/50                          put the shaping proxy in front (DELAY_MS/RATE_MIB)
#   PREFETCH=table                       --prefetch of the starts (default table, as the bench)
#   STARTUP_VARIANTS='name=FLAGS or NAME=VALUE ...|...'  as bench/startup.sh: more variants in the
#                                        rotation (JVM flags, environment; STRATA_BIN=other/bin/strata)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
image=${2:-}
py=/usr/bin/python3
for t in docker-registry java curl; do
  command -v $t >/dev/null || { echo "need $t (scripts/install-deps.sh)"; exit 1; }
done
[ -x bin/strata ] && [ -d cli/target/lib ] || mvn -B -q -o -DskipTests -pl cli -am package

work=$(mktemp -d /tmp/strata-remote-startup.XXXXXX)
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ -z "$image" ]; then
  image=$work/image
  bin/strata build /usr/include -o "$image" >/dev/null 2>&1
fi
[ -f "$image/bootstrap" ] || { echo "no bootstrap in $image"; exit 1; }

reg_port=$(free_port)
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry/storage" "$reg_port" > "$work/registry/config.yml"
env $(env | sed -n 's/^\(REGISTRY_[^=]*\)=.*/-u \1/p') docker-registry serve "$work/registry/config.yml" > "$work/registry/log" 2>&1 &
pids+=($!)
port=$reg_port
if [ -n "${SHAPE:-}" ]; then
  port=$(free_port)
  ctl_port=$(free_port)
  "$py" bench/shaping-proxy.py "$port" "$reg_port" "$ctl_port" > "$work/proxy.log" 2>&1 &
  pids+=($!)
fi
for _ in $(seq 150); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || { echo "the registry did not start: $(cat "$work/registry/log")"; exit 1; }
if [ -n "${SHAPE:-}" ]; then
  curl -fsS "http://127.0.0.1:$ctl_port/shape?delay_ms=${SHAPE%/*}&rate_mib=${SHAPE#*/}" >/dev/null
fi
timeout 600 bin/strata push "$image" "127.0.0.1:$reg_port/startup/image:latest" > "$work/push.log" 2>&1 \
  || { echo "push failed: $(tail -n 5 "$work/push.log")"; exit 1; }
echo "image $image pushed; starts against 127.0.0.1:$port (shaping ${SHAPE:-none}), --prefetch ${PREFETCH:-table}, load $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" - "$rounds" "$work" "127.0.0.1:$port/startup/image:latest" "${PREFETCH:-table}" "${STARTUP_VARIANTS:-}" <<'PY'
import os, re, shutil, socket, statistics, struct, subprocess, sys, time
rounds, work, ref, prefetch, variants = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
env = {"strata": dict(os.environ)}
for v in filter(None, variants.split("|")):
    name, opts = v.split("=", 1)
    e = dict(os.environ)
    java_opts = [e.get("STRATA_JAVA_OPTS", "")]
    for token in opts.split():
        if "=" in token and token.split("=", 1)[0].isupper() and not token.startswith("-"):
            k, val = token.split("=", 1)
            e[k] = val
        else:
            java_opts.append(token)
    e["STRATA_JAVA_OPTS"] = " ".join(java_opts).strip()
    env[name] = e
hz = os.sysconf("SC_CLK_TCK")
def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / hz
def recv(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            raise IOError("the server closed the connection")
        b += chunk
    return b
def first_read(c):
    """Fixed newstyle handshake, NBD_OPT_EXPORT_NAME "", one 4 KiB read at 0."""
    greeting = recv(c, 18)
    assert greeting[:16] == b"NBDMAGICIHAVEOPT", greeting
    c.sendall(struct.pack(">IQII", 3, 0x49484156454F5054, 1, 0))
    recv(c, 10)
    c.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 7, 0, 4096))
    magic, err = struct.unpack(">II", recv(c, 16)[:8])
    assert magic == 0x67446698 and err == 0, (magic, err)
    recv(c, 4096)
line = re.compile(r"resolved in (\d+) ms, bootstrap layer \((\d+) bytes\) \S+(?: and unpacked)? in (\d+) ms; (-?\d+) ms after")
def one(name):
    d = os.path.join(work, "run")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    sock = os.path.join(d, "nbd.sock")
    log = open(os.path.join(d, "log"), "w")
    cmd = [env[name].get("STRATA_BIN", "bin/strata"), "serve", "nbd", ref, "--cache-dir", os.path.join(d, "cache"),
           "--prefetch", prefetch, "--socket", sock, "--metrics-interval", "0"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env[name])
    try:
        deadline = t0 + 60
        while True:
            if p.poll() is not None:
                sys.exit(f"{name} exited {p.returncode}: " + open(log.name).read())
            c = socket.socket(socket.AF_UNIX)
            try:
                c.connect(sock)
                break
            except OSError:
                c.close()
                if time.monotonic() > deadline:
                    sys.exit(f"{name} did not listen in 60 s")
                time.sleep(0.001)
        listen = time.monotonic() - t0
        c.settimeout(60)
        first_read(c)
        read = time.monotonic() - t0
        cpu = cpu_ms(p.pid)
        c.close()
        for _ in range(100):
            m = line.search(open(log.name).read())
            if m:
                break
            time.sleep(0.01)
        resolve, boot, after = (int(m.group(1)), int(m.group(3)), int(m.group(4))) if m else (-1, -1, -1)
        return listen * 1000, read * 1000, cpu, resolve, boot, after
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
cols = ("listen", "read", "cpu", "resolve", "boot", "after")
results = {n: [] for n in env}
for r in range(rounds):
    for n in env:
        results[n].append(one(n))
        print(f"round {r + 1} {n:10} " + " ".join(f"{c} {v:.0f}" for c, v in zip(cols, results[n][-1])), flush=True)
print(f"\nmedians of {rounds} rounds (ms from exec; cpu = user+sys ms of the server at the first read's answer), load {open('/proc/loadavg').read().split()[:3]}")
print(f"{'variant':12} " + " ".join(f"{c:>8}" for c in cols))
for n in env:
    print(f"{n:12} " + " ".join(f"{statistics.median(x[i] for x in results[n]):8.0f}" for i in range(len(cols))))
PY
