#!/usr/bin/env bash
# Builds one tree with `strata build` and with mkfs.erofs (chunk-based 1 MiB, and lz4hc), taking
# turns, ROUNDS times, and prints the median wall time, CPU time (user + sys, all threads) and
# output size of each, with ratios to mkfs.erofs. Issue 5's goal: strata's wall time no more than
# mkfs.erofs's on 2 cores, with comparable size.
#
#   image-builder/bench/build-vs-mkfs.sh [TREE]     (default: a copy of /usr/include + /usr/lib/python3)
#
# Needs a built checkout (mvn -B -DskipTests package) and erofs-utils. Each tool reads the tree from
# the page cache (it is read once before the first round). CPU figures include the JVM's JIT and GC
# threads; wall figures include JVM start-up.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${ROUNDS:-5}
strata=$here/bin/strata
command -v mkfs.erofs >/dev/null || { echo "bench: mkfs.erofs not found (apt-get install erofs-utils)" >&2; exit 1; }
[ -d "$here/cli/target/lib" ] || { echo "bench: build first: (cd $here && mvn -B -DskipTests package)" >&2; exit 1; }

work=$(mktemp -d /tmp/strata-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree=${1:-}
if [ -z "$tree" ]; then
  tree=$work/tree
  mkdir -p "$tree"
  cp -a /usr/include "$tree/include"
  cp -a /usr/lib/python3 "$tree/python3"
fi
tar -cf - -C "$tree" . | cat > /dev/null   # warm the page cache
files=$(find "$tree" -type f | wc -l)
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
echo "tree: $tree: $files files, $((bytes / 1048576)) MiB; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(java -version 2>&1 | head -n 1); mkfs.erofs $(dpkg-query -W -f='${Version}' erofs-utils 2>/dev/null || echo '?')"

variants=(strata-zstd strata-lz4 strata-none mkfs-chunked mkfs-lz4hc)
run() {
  local v=$1 out=$work/out-$1
  case $v in
    strata-zstd)  "$strata" build "$tree" -o "$out" --source-date-epoch 0 >/dev/null 2>&1 ;;
    strata-lz4)   "$strata" build "$tree" -o "$out" --source-date-epoch 0 --compressor lz4 >/dev/null 2>&1 ;;
    strata-none)  "$strata" build "$tree" -o "$out" --source-date-epoch 0 --compressor none >/dev/null 2>&1 ;;
    mkfs-chunked) mkdir -p "$out" && mkfs.erofs --chunksize=1048576 "$out/img" "$tree" >/dev/null 2>&1 ;;
    mkfs-lz4hc)   mkdir -p "$out" && mkfs.erofs -zlz4hc "$out/img" "$tree" >/dev/null 2>&1 ;;
  esac
}

TIMEFORMAT='%R %U %S'
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    # Untimed: remove the last output and write back dirty pages, so that no run pays for another's
    # writeback (strata fsyncs its files before publishing them; mkfs.erofs does not fsync).
    rm -rf "$work/out-$v"
    sync
    t=$( { time run "$v"; } 2>&1 )
    echo "$t" >> "$work/times-$v"
  done
  echo "round $r of $rounds done" >&2
done

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
size_of() { find "$work/out-$1" -type f -printf '%s\n' | awk '{s += $1} END {print s}'; }
declare -A wall cpu size
for v in "${variants[@]}"; do
  wall[$v]=$(awk '{print $1}' "$work/times-$v" | median)
  cpu[$v]=$(awk '{print $2 + $3}' "$work/times-$v" | median)
  size[$v]=$(size_of "$v")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
printf '\n%-14s %9s %9s %12s %14s %14s\n' variant "wall s" "CPU s" "output MiB" "wall/chunked" "wall/lz4hc"
for v in "${variants[@]}"; do
  printf '%-14s %9.2f %9.2f %12.1f %14s %14s\n' "$v" "${wall[$v]}" "${cpu[$v]}" "$(ratio "${size[$v]}" 1048576)" \
    "$(ratio "${wall[$v]}" "${wall[mkfs-chunked]}")" "$(ratio "${wall[$v]}" "${wall[mkfs-lz4hc]}")"
done
echo
echo "size ratios: strata-zstd/mkfs-lz4hc $(ratio "${size[strata-zstd]}" "${size[mkfs-lz4hc]}")," \
  "strata-lz4/mkfs-lz4hc $(ratio "${size[strata-lz4]}" "${size[mkfs-lz4hc]}")," \
  "strata-none/mkfs-chunked $(ratio "${size[strata-none]}" "${size[mkfs-chunked]}")"
echo "(median of $rounds rounds, variants taking turns; strata output = bootstrap + blobs, mkfs output = image file)"
