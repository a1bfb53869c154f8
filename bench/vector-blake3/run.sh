#!/bin/bash
# The Vector API BLAKE3 experiment of issue 10 (docs/benchmarks.md, "BLAKE3 digest"): a prototype that
# hashes 16 BLAKE3 chunks (or parents) per compression in 512-bit IntVectors of the incubating
# jdk.incubator.vector, checked bit for bit against Strata's Blake3 (and BouncyCastle's, when its jar
# is in ~/.m2), then both measured on 1 MiB in MiB per thread-CPU-second, alternating, on each JDK.
# Not part of Strata: the module is incubating (a warning on every start, and --add-modules costs
# each JVM start ~70 ms of CPU and ~4 MB; see docs/benchmarks.md). Needs the built core classes.
#   bench/vector-blake3/run.sh [ROUNDS]        JDKS="dir ..." to choose the JDKs
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=${1:-9}
classes=$root/core-blockmap/target/classes
if [ ! -f "$classes/io/strata/core/digest/Blake3.class" ]; then
  echo "run.sh: build Strata first (mvn -B -q package -DskipTests)" >&2
  exit 2
fi
cp=$classes
bc=$(ls "$HOME"/.m2/repository/org/bouncycastle/bcprov-jdk18on/1.87/bcprov-jdk18on-1.87.jar 2>/dev/null || true)
[ -n "$bc" ] && cp=$cp:$bc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/io/strata/core/digest" "$work/src/bench"
python3 "$here/gen.py" "$here/VecBlake3.java.in" "$work/src/io/strata/core/digest/VecBlake3.java"
cp "$here/Bench.java" "$work/src/bench/"
for jdk in ${JDKS:-/usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/temurin-25-jdk-amd64}; do
  echo "== $jdk ($("$jdk/bin/java" -version 2>&1 | head -1))"
  out=$work/out-$(basename "$jdk")
  "$jdk/bin/javac" -nowarn -XDsuppressNotes --release 17 --add-modules jdk.incubator.vector -cp "$cp" -d "$out" \
    "$work/src/io/strata/core/digest/VecBlake3.java" "$work/src/bench/Bench.java" 2>&1 | grep -v "incubating" || true
  # bench: verify (every variant against Blake3), then 3 s warm-up each and ROUNDS alternating rounds of
  # 0.5 CPU-s: strata = Strata's Blake3, 0/3 = the prototype's best variant (see Bench.java, VecBlake3.java.in).
  "$jdk/bin/java" --add-modules jdk.incubator.vector -cp "$out:$cp" bench.Bench bench "$rounds" strata,0/3 2>&1 \
    | grep -v "^WARNING: Using incubator modules"
done
