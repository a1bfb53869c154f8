#!/usr/bin/env bash
# Builds the guest kit the qemu-tests boot: QEMU 10 (bookworm-backports), the Debian 6.12 cloud
# kernel, and a busybox initramfs with the modules the tests load. Cached outside the source tree
# (STRATA_CACHE, default /var/cache/strata); rerunning reuses what is there. Needs root.
#
# Why backports: bookworm's QEMU 7.2 under TCG crashed this 6.12 guest in about a third of boots.
# Why derive the mirror: the machine's apt sources already name one; no host name is written here.
set -euo pipefail

cache=${STRATA_CACHE:-/var/cache/strata}
kit=$cache/guest-kit
mkdir -p "$kit"

log() { echo "guest-kit: $*" >&2; }

# --- apt source for bookworm-backports, from the mirror the system already uses -----------------
backports=/etc/apt/sources.list.d/strata-backports.sources
if [ ! -f "$backports" ]; then
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && $0 ~ /bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { log "cannot find the bookworm mirror in the apt sources"; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$backports"
  log "added bookworm-backports from $uri"
  apt-get update -qq
fi

# --- QEMU 10 and the guest's userland tools ------------------------------------------------------
need_qemu=1
if command -v qemu-system-x86_64 >/dev/null; then
  v=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
  [ "${v:-0}" -ge 10 ] && need_qemu=0
fi
if [ $need_qemu = 1 ]; then
  log "installing qemu-system-x86 from bookworm-backports"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
fi
for p in busybox-static cpio xz-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done

# --- the 6.12 cloud kernel, unpacked ---------------------------------------------------------------
if [ ! -f "$kit/vmlinuz" ]; then
  pkg=$(apt-cache depends -t bookworm-backports linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { log "no linux-image cloud kernel in bookworm-backports"; exit 1; }
  log "downloading $pkg"
  rm -rf "$kit/kernel" && mkdir -p "$kit/kernel"
  (cd "$kit" && rm -f linux-image-*.deb && apt-get download -t bookworm-backports "$pkg" >/dev/null)
  dpkg -x "$kit"/linux-image-*.deb "$kit/kernel"
  rm -f "$kit"/linux-image-*.deb
  cp "$kit"/kernel/boot/vmlinuz-* "$kit/vmlinuz"
  ls "$kit/kernel/lib/modules" > "$kit/kernel-version"
fi
kver=$(cat "$kit/kernel-version")
moddir=$kit/kernel/lib/modules/$kver/kernel

# --- the initramfs ------------------------------------------------------------------------------
# Modules in load order (the package ships no modules.dep): the dependencies first.
modules=(
  lib/libcrc32c
  drivers/block/virtio_blk
  fs/netfs/netfs
  fs/erofs/erofs
  drivers/block/nbd
)
if [ ! -f "$kit/initramfs.cpio.gz" ] || [ "${BASH_SOURCE[0]}" -nt "$kit/initramfs.cpio.gz" ]; then
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,mnt,tmp,modules,etc}
  cp /bin/busybox "$root/bin/busybox"
  for m in "${modules[@]}"; do
    src=$(ls "$moddir/$m".ko* 2>/dev/null | head -n 1 || true)
    [ -n "$src" ] || { log "module $m not in $kver: skipped"; continue; }
    case "$src" in
      *.xz) xz -dc "$src" > "$root/modules/$(basename "$m").ko" ;;
      *.zst) zstd -qdc "$src" > "$root/modules/$(basename "$m").ko" ;;
      *) cp "$src" "$root/modules/$(basename "$m").ko" ;;
    esac
    echo "$(basename "$m")" >> "$root/modules/order"
  done
  cat > "$root/init" <<'INIT'
#!/bin/busybox sh
# Strata test guest: load modules, run /test.sh (added per test), print its result between markers.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m.ko 2>/dev/null || echo "insmod $m failed"; done
echo "STRATA-GUEST-BOOTED"
if [ -x /test.sh ]; then
  echo "STRATA-TEST-BEGIN"
  /test.sh; rc=$?
  echo "STRATA-TEST-END rc=$rc"
else
  echo "STRATA-TEST-END rc=127 (no /test.sh)"
fi
sync
poweroff -f
INIT
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$kit/initramfs.cpio.gz.tmp"
  # Tests append an uncompressed cpio; the kernel wants it 4-byte aligned (zeros between are skipped).
  truncate -s %4 "$kit/initramfs.cpio.gz.tmp"
  mv "$kit/initramfs.cpio.gz.tmp" "$kit/initramfs.cpio.gz"
  rm -rf "$root"
  log "initramfs with modules: $(printf '%s ' "${modules[@]##*/}")"
fi

echo "qemu=$(command -v qemu-system-x86_64)" > "$kit/kit.env"
echo "kernel=$kit/vmlinuz" >> "$kit/kit.env"
echo "initramfs=$kit/initramfs.cpio.gz" >> "$kit/kit.env"
echo "kernel_version=$kver" >> "$kit/kit.env"
log "ready: $kit ($(qemu-system-x86_64 --version | head -n 1), kernel $kver)"
