#!/usr/bin/env bash
# Start-up and idle footprint: Strata (`serve nbd` of the shared Nydus fixture), nbdkit (file plugin)
# and qemu-nbd (both on the fixture's flat export), one after another in alternating rounds. For each
# start it measures, from just before exec:
#   listen  - until the unix socket accepts a connection (polled every 1 ms),
#   ready   - until `nbdinfo --size` (run as soon as it accepts) has its answer: the handshake done,
#   read    - until `qemu-io -c 'read 0 4k'` then has its first 4 KiB (Strata's first chunk load),
#   rss     - VmRSS of the server 1 s after that read, in MiB,
#   cpu     - the server's CPU time (user + system) at that point, in ms: what start-up cost, even
#             when other work on the machine stretches the wall times,
#   idle    - VmRSS 7 s after exec, when a JVM's memory has settled (below), in MiB and in MB.
# Prints the median of each per server and Strata's ratio to each peer.
#
#   bench/startup.sh [ROUNDS=7]          STRATA_JAVA_OPTS / JAVA_HOME are passed to bin/strata as usual
#   STARTUP_VARIANTS='nocds=STRATA_CDS=off|c1=-XX:TieredStopAtLevel=1' bench/startup.sh
#                                        adds Strata started with those JVM flags (STRATA_JAVA_OPTS) and
#                                        environment variables (NAME=VALUE) to the rotation;
#                                        STRATA_BIN=OTHER/bin/strata runs another build's launcher
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
for t in nbdkit qemu-nbd nbdinfo qemu-io python3; do
  command -v $t >/dev/null || { echo "need $t (apt-get install nbdkit qemu-utils libnbd-bin python3)"; exit 1; }
done
[ -x bin/strata ] && [ -d cli/target/lib ] || mvn -B -q -DskipTests package
fixtures=${STRATA_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
boot=$fixtures/nydus-rafs-v6/rafs-v6-2.2.boot
[ -f "$boot" ] || { echo "no fixture at $boot (set STRATA_FIXTURES)"; exit 1; }

work=$(mktemp -d /tmp/strata-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT
bin/strata export "$boot" -o "$work/flat.img" >/dev/null 2>&1
cat "$work/flat.img" "$boot" "$(dirname "$boot")"/* >/dev/null  # page-cache the inputs

python3 - "$rounds" "$work" "$boot" "${STARTUP_VARIANTS:-}" <<'PY'
import os, socket, statistics, subprocess, sys, time
rounds, work, boot, variants = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
flat = os.path.join(work, "flat.img")
def strata(e):
    return lambda s: [e.get("STRATA_BIN", "bin/strata"), "serve", "nbd", boot, "--socket", s, "--metrics-interval", "0"]
servers = {"strata": strata(os.environ)}
env = {"strata": dict(os.environ)}
for v in filter(None, variants.split("|")):
    name, opts = v.split("=", 1)
    e = dict(os.environ)
    java_opts = [e.get("STRATA_JAVA_OPTS", "")]
    for token in opts.split():
        if "=" in token and token.split("=", 1)[0].isupper() and not token.startswith("-"):
            k, val = token.split("=", 1)   # an environment variable, e.g. STRATA_CDS=off
            e[k] = val
        else:
            java_opts.append(token)
    e["STRATA_JAVA_OPTS"] = " ".join(java_opts).strip()
    env[name] = e
    servers[name] = strata(e)
servers["nbdkit"] = lambda s: ["nbdkit", "-f", "-r", "--unix", s, "file", flat]
servers["qemu-nbd"] = lambda s: ["qemu-nbd", "-t", "-r", "-f", "raw", "-k", s, flat]
hz = os.sysconf("SC_CLK_TCK")
# The JVM returns its compilers' freed arenas to glibc every 5 s from its start (HotSpot's chunk-pool
# cleaner), and bin/strata has glibc give them back to the kernel every second: a server's memory
# settles ~5 s after exec. "idle" is read after that.
IDLE_AFTER = 7.0
def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / hz
def one(name):
    sock = os.path.join(work, name + ".sock")
    if os.path.exists(sock):
        os.unlink(sock)
    log = open(os.path.join(work, name + ".log"), "w")
    t0 = time.monotonic()
    p = subprocess.Popen(servers[name](sock), stdout=log, stderr=subprocess.STDOUT, env=env.get(name))
    try:
        deadline = t0 + 30
        while True:
            if p.poll() is not None:
                sys.exit(f"{name} exited {p.returncode}: " + open(log.name).read())
            try:
                c = socket.socket(socket.AF_UNIX)
                c.connect(sock)
                c.close()
                break
            except OSError:
                c.close()
                if time.monotonic() > deadline:
                    sys.exit(f"{name} did not listen in 30 s")
                time.sleep(0.001)
        listen = time.monotonic() - t0
        uri = "nbd+unix:///?socket=" + sock
        subprocess.run(["nbdinfo", "--size", uri], check=True, capture_output=True, timeout=30)
        ready = time.monotonic() - t0
        subprocess.run(["qemu-io", "-r", "-f", "raw", "-c", "read 0 4k", uri], check=True, capture_output=True, timeout=30)
        read = time.monotonic() - t0
        time.sleep(1)
        rss, cpu = rss_mib(p.pid), cpu_ms(p.pid)
        time.sleep(max(0.0, t0 + IDLE_AFTER - time.monotonic()))
        return listen * 1000, ready * 1000, read * 1000, rss, cpu, rss_mib(p.pid)
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
results = {n: [] for n in servers}
for r in range(rounds):
    for n in servers:  # alternating: every round starts each server once, in turn
        results[n].append(one(n))
    print(f"round {r + 1}: " + "; ".join(f"{n} {results[n][-1][1]:.0f} ms {results[n][-1][3]:.1f} MiB" for n in servers), flush=True)
med = {n: [statistics.median(x[i] for x in results[n]) for i in range(6)] for n in servers}
print(f"\nmedians of {rounds} rounds (ms from exec; rss: MiB 1 s after one 4 KiB read, and CPU ms then;"
      f" idle: MiB {IDLE_AFTER:.0f} s after exec)")
print(f"{'server':12} {'listen':>8} {'ready':>8} {'read':>8} {'rss':>8} {'cpu':>8} {'idle':>8} {'idle MB':>8}")
for n in servers:
    l, rd, rr, m, c, idle = med[n]
    print(f"{n:12} {l:8.0f} {rd:8.0f} {rr:8.0f} {m:8.1f} {c:8.0f} {idle:8.1f} {idle * 1.048576:8.1f}")
for peer in ("nbdkit", "qemu-nbd"):
    s, q = med["strata"], med[peer]
    print(f"strata/{peer}: ready {s[1] / q[1]:.1f}x, read {s[2] / q[2]:.1f}x, rss {s[3] / q[3]:.1f}x, idle {s[5] / q[5]:.1f}x")
PY
