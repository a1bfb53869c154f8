#!/usr/bin/env bash
# Runs the core read-path JMH benchmarks (ReadPathBenchmark, CodecBenchmark) with settings that fit
# a 2-core machine in about 6 minutes. Builds jmh/target/benchmarks.jar first if it is missing
# (or when REBUILD=1). Results go outside git: $STRATA_JMH_OUT, by default jmh/target/jmh-results/
# (results.json for tools, results.txt the console log).
#
#   jmh/run-benchmarks.sh                      # the whole core read set
#   jmh/run-benchmarks.sh 'ReadPathBenchmark.miss' -p variant=lz4-sha256   # any JMH arguments
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
root=$(dirname "$here")
jar=$here/target/benchmarks.jar
out=${STRATA_JMH_OUT:-$here/target/jmh-results}
java=${JAVA_HOME:+$JAVA_HOME/bin/}java

if [ ! -f "$jar" ] || [ "${REBUILD:-0}" = 1 ]; then
  (cd "$root" && mvn -B -pl core-blockmap,jmh -am -DskipTests package)
fi

# The fork flags are in JvmSettings' @Fork; JDK 23+ also needs this one, which JDK 17 refuses.
version=$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
major=${version%%.*}
extra=()
if [ -n "$major" ] && [ "$major" -ge 23 ]; then
  extra=(-jvmArgsPrepend --sun-misc-unsafe-memory-access=allow)
fi

if [ $# -eq 0 ]; then
  set -- 'io\.strata\.jmh\.(ReadPath|Codec)Benchmark\.'
fi

mkdir -p "$out"
"$java" -version 2>&1 | tee "$out/results.txt"
"$java" -jar "$jar" -f 1 -wi 3 -w 2s -i 5 -r 2s -rf json -rff "$out/results.json" "${extra[@]}" "$@" \
  2>&1 | tee -a "$out/results.txt"
echo "results: $out/results.json, $out/results.txt"
