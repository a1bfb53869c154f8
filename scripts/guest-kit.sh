#!/usr/bin/env bash
# Builds the guest kit the qemu-tests boot: QEMU 10 (bookworm-backports), the Debian 6.12 cloud
# kernel (backports) and bookworm's own 6.1 cloud kernel (the --legacy-kernel oracle), and for each
# a busybox initramfs with the modules the tests load. Cached outside the source tree
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

# --- a cloud kernel, unpacked ---------------------------------------------------------------------
# fetch_kernel DIR APT-CACHE-ARGS...: the linux-image package linux-image-cloud-amd64 depends on
# (in the suite the arguments select), unpacked under DIR/kernel, with DIR/vmlinuz and DIR/kernel-version.
fetch_kernel() {
  local dir=$1; shift
  [ -f "$dir/vmlinuz" ] && return 0
  local pkg
  pkg=$(apt-cache depends "$@" linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { log "no linux-image cloud kernel for apt-cache depends $*"; exit 1; }
  log "downloading $pkg"
  mkdir -p "$dir" && rm -rf "$dir/kernel" && mkdir -p "$dir/kernel"
  (cd "$dir" && rm -f linux-image-*.deb && apt-get download "$@" "$pkg" >/dev/null)
  dpkg -x "$dir"/linux-image-*.deb "$dir/kernel"
  rm -f "$dir"/linux-image-*.deb
  ls "$dir/kernel/lib/modules" > "$dir/kernel-version"
  cp "$dir"/kernel/boot/vmlinuz-* "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
}

# The 6.12 kernel (bookworm-backports): the kernel most tests boot; virtio_pci is built in.
fetch_kernel "$kit" -t bookworm-backports
# Debian bookworm's own 6.1 kernel (bookworm or bookworm-security, never backports: backports' pin
# of 100 loses to their 500). It predates EROFS's device table support for flat multi-blob images
# (6.4), so it is the oracle for --legacy-kernel; its virtio_pci is a module, unlike 6.12's.
fetch_kernel "$kit/legacy" -t bookworm
case "$(cat "$kit/legacy/kernel-version")" in
  6.1.*) ;;
  *) log "bookworm's cloud kernel is $(cat "$kit/legacy/kernel-version"), not 6.1"; exit 1 ;;
esac

# --- the initramfs ------------------------------------------------------------------------------
# The modules the tests use; each is loaded after the modules its .modinfo "depends=" names (the
# package ships no modules.dep and the host may have no kmod). One built into the kernel is skipped.
# virtio_net: a guest that reaches a registry on the host through QEMU's user-mode network (slirp).
wanted=(virtio_pci virtio_blk erofs nbd virtio_net)

# module_file MODDIR NAME: the .ko(.xz|.zst) file of module NAME (- and _ are the same in names).
module_file() {
  find "$1" -name '*.ko*' | awk -v n="$2" '{b=$0; sub(/.*\//, "", b); sub(/\.ko.*/, "", b); gsub(/-/, "_", b); if (b == n && !found) {print; found = 1}}'
}
ko_cat() {
  case "$1" in
    *.xz) xz -dc "$1" ;;
    *.zst) zstd -qdc "$1" ;;
    *) cat "$1" ;;
  esac
}
# add_module MODDIR ROOT NAME: copies NAME's dependencies, then NAME, into ROOT/modules in load order.
add_module() {
  local moddir=$1 root=$2 name=$3 src dep
  grep -qx "$name" "$root/modules/order" 2>/dev/null && return 0
  src=$(module_file "$moddir" "$name")
  [ -n "$src" ] || { log "module $name not in $(basename "$(dirname "$moddir")"): built in or absent, skipped"; return 0; }
  for dep in $(ko_cat "$src" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '); do
    add_module "$moddir" "$root" "$dep"
  done
  ko_cat "$src" > "$root/modules/$name.ko"
  echo "$name" >> "$root/modules/order"
}

# build_initramfs DIR: DIR/initramfs.cpio.gz for the kernel unpacked in DIR.
build_initramfs() {
  local dir=$1 kver root
  kver=$(cat "$dir/kernel-version")
  if [ -f "$dir/initramfs.cpio.gz" ] && [ ! "${BASH_SOURCE[0]}" -nt "$dir/initramfs.cpio.gz" ]; then
    return 0
  fi
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,mnt,tmp,modules,etc}
  cp /bin/busybox "$root/bin/busybox"
  for m in "${wanted[@]}"; do
    add_module "$dir/kernel/lib/modules/$kver/kernel" "$root" "$m"
  done
  cat > "$root/init" <<'INIT'
#!/bin/busybox sh
# Strata test guest: load modules, run /test.sh (added per test), print its result between markers.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m.ko 2>/dev/null || echo "insmod $m failed"; done
echo "STRATA-GUEST-BOOTED $(uname -r)"
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
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir/initramfs.cpio.gz.tmp"
  # Tests append an uncompressed cpio; the kernel wants it 4-byte aligned (zeros between are skipped).
  truncate -s %4 "$dir/initramfs.cpio.gz.tmp"
  mv "$dir/initramfs.cpio.gz.tmp" "$dir/initramfs.cpio.gz"
  log "initramfs for $kver with modules: $(tr '\n' ' ' < "$root/modules/order")"
  rm -rf "$root"
}
build_initramfs "$kit"
build_initramfs "$kit/legacy"

echo "qemu=$(command -v qemu-system-x86_64)" > "$kit/kit.env"
echo "kernel=$kit/vmlinuz" >> "$kit/kit.env"
echo "initramfs=$kit/initramfs.cpio.gz" >> "$kit/kit.env"
echo "kernel_version=$(cat "$kit/kernel-version")" >> "$kit/kit.env"
echo "legacy_kernel=$kit/legacy/vmlinuz" >> "$kit/kit.env"
echo "legacy_initramfs=$kit/legacy/initramfs.cpio.gz" >> "$kit/kit.env"
echo "legacy_kernel_version=$(cat "$kit/legacy/kernel-version")" >> "$kit/kit.env"
log "ready: $kit ($(qemu-system-x86_64 --version | head -n 1), kernels $(cat "$kit/kernel-version") and $(cat "$kit/legacy/kernel-version"))"
