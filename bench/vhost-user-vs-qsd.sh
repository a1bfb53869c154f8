#!/usr/bin/env bash
# Strata's vhost-user-blk back-end beside qemu-storage-daemon's (--export type=vhost-user-blk) on the
# same raw image, in one run, alternating: a guest (QEMU 10, Linux 6.12, TCG) runs fio on the disk:
# 1 MiB sequential reads with O_DIRECT (as dd iflag=direct does), 4 KiB random reads at queue depth
# 1 and 8. Prints each figure, the ratio Strata/qsd, and each back-end's CPU seconds per GiB read.
#
#   bench/vhost-user-vs-qsd.sh [SIZE_MIB=256] [ROUNDS=2] [SECONDS=10] [QUEUES=1]
# Needs the guest kit (scripts/guest-kit.sh), fio, qemu-storage-daemon, erofs-utils; run as root.
# Under TCG the guest's own CPU cost dominates absolute numbers; the ratios and the back-ends' CPU
# per GiB are the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-256}
rounds=${2:-2}
secs=${3:-10}
queues=${4:-1}
kit=${STRATA_CACHE:-/var/cache/strata}/guest-kit
source "$kit/kit.env"
for t in fio qemu-storage-daemon mkfs.erofs cpio; do command -v $t >/dev/null || { echo "need $t"; exit 1; }; done
[ -d cli/target/lib ] || mvn -B -q -DskipTests package

work=$(mktemp -d /tmp/strata-vhost-bench.XXXXXX)
backend=
cleanup() { [ -n "$backend" ] && kill "$backend" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

dd if=/dev/urandom of="$work/disk.img" bs=1M count="$size_mib" status=none

# fio and the libraries it links, on a small EROFS disk (busybox's initramfs has no glibc).
mkdir -p "$work/tools/lib"
cp "$(command -v fio)" "$work/tools/fio"
ldd "$(command -v fio)" | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do cp -L "$lib" "$work/tools/lib/"; done
mkfs.erofs "$work/tools.img" "$work/tools" >/dev/null

mkdir -p "$work/initrd"
cat > "$work/initrd/test.sh" <<GUEST
#!/bin/sh
mkdir -p /t /mnt
disk=
for d in /dev/vd?; do
  if mount -t erofs -o ro \$d /mnt 2>/dev/null; then
    if [ -x /mnt/fio ]; then umount /mnt; mount -t erofs -o ro \$d /t; continue; fi
    umount /mnt
  fi
  disk=\$d
done
[ -n "\$disk" ] || { echo "no bench disk"; exit 1; }
fio() { /t/lib/ld-linux-x86-64.so.2 --library-path /t/lib /t/fio "\$@"; }
run() { # name, fio args...
  name=\$1; shift
  v=\$(fio --name=\$name --filename=\$disk --direct=1 --runtime=$secs --time_based --output-format=terse --terse-version=3 "\$@" 2>/dev/null)
  echo "\$v" | awk -F';' -v n=\$name '{ printf "RESULT %s bw_kib=%s iops=%s\n", n, \$7, \$8 }'
}
run seq1m --rw=read --bs=1M --ioengine=psync
run rand4k_qd1 --rw=randread --bs=4k --ioengine=psync
run rand4k_qd8 --rw=randread --bs=4k --ioengine=libaio --iodepth=8
GUEST
chmod +x "$work/initrd/test.sh"
(cd "$work/initrd" && find . | cpio -o -H newc --quiet) > "$work/extra.cpio"
cat "$initramfs" > "$work/initrd.img"
truncate -s %4 "$work/initrd.img"   # the appended cpio must start 4-byte aligned (init/initramfs.c)
cat "$work/extra.cpio" >> "$work/initrd.img"

start_backend() { # name -> sets $backend
  rm -f "$work/vhost.sock"
  case $1 in
    strata) bin/strata serve vhost-user --raw "$work/disk.img" --socket "$work/vhost.sock" --queues "$queues" > "$work/strata.log" 2>&1 & ;;
    qsd) qemu-storage-daemon --blockdev driver=file,node-name=file0,filename="$work/disk.img",read-only=on,aio=threads,cache.direct=off \
           --blockdev driver=raw,node-name=disk0,file=file0,read-only=on \
           --export type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path="$work/vhost.sock",writable=off,num-queues="$queues" \
           > "$work/qsd.log" 2>&1 & ;;
  esac
  backend=$!
  for i in $(seq 100); do [ -S "$work/vhost.sock" ] && return; sleep 0.2; done
  echo "$1 did not start"; cat "$work/$1.log"; exit 1
}
ticks() { awk '{print $14 + $15}' "/proc/$backend/stat"; }

cat "$work/disk.img" > /dev/null
declare -A total
for r in $(seq "$rounds"); do
  for b in strata qsd; do
    start_backend $b
    t0=$(ticks)
    timeout 900 "$qemu" -accel tcg -machine q35 -cpu max -smp 2 -m 1024M -kernel "$kernel" -initrd "$work/initrd.img" \
      -append "console=ttyS0 panic=-1 loglevel=3" -nographic -no-reboot -nodefaults -serial stdio \
      -object memory-backend-memfd,id=mem,size=1024M,share=on -numa node,memdev=mem \
      -chardev socket,id=c0,path="$work/vhost.sock" -device vhost-user-blk-pci,chardev=c0,num-queues="$queues" \
      -drive file="$work/tools.img",if=virtio,format=raw,readonly=on > "$work/console.log" 2>&1 || true
    t1=$(ticks)
    kill "$backend"; wait "$backend" 2>/dev/null || true; backend=
    grep -q "RESULT seq1m" "$work/console.log" || { echo "$b round $r: no results"; tail -30 "$work/console.log"; exit 1; }
    while read -r _ name bw iops; do
      total[$b.$name.bw]=$(( ${total[$b.$name.bw]:-0} + ${bw#bw_kib=} ))
      total[$b.$name.iops]=$(( ${total[$b.$name.iops]:-0} + ${iops#iops=} ))
      echo "round $r $b $name ${bw} ${iops}" >&2
    done < <(grep '^RESULT' "$work/console.log" | tr -d '\r')
    kib=$(grep '^RESULT' "$work/console.log" | tr -d '\r' | awk '{split($3,a,"="); s+=a[2]} END {print s}')
    total[$b.cpu]=$(( ${total[$b.cpu]:-0} + t1 - t0 ))
    total[$b.kib]=$(( ${total[$b.kib]:-0} + kib * secs ))
  done
done

hz=$(getconf CLK_TCK)
echo
echo "vhost-user-blk, guest fio (TCG, 2 vCPUs), ${size_mib} MiB raw image, ${queues} queue(s), ${rounds} rounds x ${secs}s per job, $(nproc) host CPUs"
printf '%-8s %14s %14s %14s %16s\n' backend "1M seq MiB/s" "4k qd1 IOPS" "4k qd8 IOPS" "CPU s per GiB"
for b in strata qsd; do
  python3 -c "
r=$rounds
print(f'%-8s %14.1f %14.0f %14.0f %16.2f' % ('$b', ${total[$b.seq1m.bw]}/1024/r, ${total[$b.rand4k_qd1.iops]}/r, ${total[$b.rand4k_qd8.iops]}/r, (${total[$b.cpu]}/$hz)/(${total[$b.kib]}/1048576)))"
done
python3 -c "
print()
print('ratio strata/qsd: 1M %.2fx  4k qd1 %.2fx  4k qd8 %.2fx  CPU per GiB %.2fx' % (
  ${total[strata.seq1m.bw]}/${total[qsd.seq1m.bw]}, ${total[strata.rand4k_qd1.iops]}/${total[qsd.rand4k_qd1.iops]},
  ${total[strata.rand4k_qd8.iops]}/${total[qsd.rand4k_qd8.iops]},
  (${total[strata.cpu]}/${total[strata.kib]})/(${total[qsd.cpu]}/${total[qsd.kib]})))"
