#!/usr/bin/env bash
# Installs the host tools Strata's tests and demo use (Debian bookworm) and builds the guest kit.
# Idempotent; needs root.
# Java 17 and Maven come with the machine; this adds the real peers the tests check against.
set -euo pipefail

packages=(
  cryptsetup-bin   # veritysetup: checks exported dm-verity trees
  erofs-utils      # mkfs.erofs: plain EROFS images for --raw sources, and the builder benchmark's baseline
  libnbd-bin       # nbdinfo, nbdcopy: NBD clients the tests talk to
  gnutls-bin       # certtool: the CA, server and client certificates of the NBD TLS tests
  nbdkit           # the NBD peer in bench/nbd-vs-peers.sh
  qemu-utils       # qemu-img (NBD client), qemu-nbd (benchmark peer)
  fio              # fio --ioengine=nbd
  cpio             # per-test guest initramfs
  busybox-static   # the guest's userland
  attr             # getfattr/setfattr: the image builder's tests set and compare xattrs
  umoci            # OCI image layouts made by a tool nobody here wrote, for the builder's OCI tests
  git              # the builder's test of the project's own tree reads the checkout with git archive
  docker-registry  # CNCF distribution 2.8: the real OCI registry of the remote-image tests (RegistryFixture)
  skopeo           # an independent registry client: inspects what strata push wrote, copies plain OCI images
  apache2-utils    # htpasswd -B: the bcrypt entries of the registry's basic-auth variant
  python3-libnbd   # libnbd for Python: the NBD client of bench/remote-vs-peers.sh (replays recorded block ranges)
  asciidoctor      # mvn package: turns the AsciiDoc man pages picocli-codegen writes into troff (cli/pom.xml)
  man-db           # man -l: ManPagesIT renders every generated page
  systemd          # systemd-socket-activate, systemd-analyze: SystemdIT (socket activation, the shipped units)
  python3          # SystemdIT's NOTIFY_SOCKET reader (a unix datagram socket, as systemd reads it)
  prometheus       # promtool check metrics: MetricsIT lints a live scrape of --metrics-listen (the server itself is kept off, below)
  curl             # DaemonIT: the control API through curl --unix-socket, as an operator calls it
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The prometheus package is here for promtool only. On a machine without a policy-rc.d its maintainer
# scripts start the server (port 9090) and the recommended node exporter (9100): stop them and keep
# them from starting at boot, so nothing but the tests listens on the test machine.
for service in prometheus prometheus-node-exporter; do
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$service" ]; then
    "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    update-rc.d "$service" disable >/dev/null 2>&1 || true
  fi
done
# The guest kit (QEMU 10 from bookworm-backports, the 6.12 and bookworm 6.1 kernels, their initramfs), cached.
"$(dirname "$0")/guest-kit.sh"
# The mount tests need EROFS and loop devices in the running kernel.
grep -qw erofs /proc/filesystems || modprobe erofs 2>/dev/null || true
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || true
