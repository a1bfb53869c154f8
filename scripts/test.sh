#!/usr/bin/env bash
# The whole test suite: host tools, then every module's tests on JDK 17 (the default java), a
# 2-minute soak (bench/soak.sh), 20 s of fuzzing per fuzz test (scripts/fuzz.sh), and every module's
# tests again on JDK 25 when one is installed (Strata must build and run on both).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== tests on $(java -version 2>&1 | head -n 1)"
mvn -B verify

# Soak, once (JDK 17, on the bin/strata that verify just packaged): 100 NBD connections and two
# vhost-user guests against the servers for 2 minutes; fails if a server's memory, threads, fds or
# mappings grow, if any read is wrong, or if a tool is missing. `bench/soak.sh 30` soaks longer.
echo "== soak: bench/soak.sh ${STRATA_SOAK_MINUTES:-2}"
bench/soak.sh "${STRATA_SOAK_MINUTES:-2}"

# Fuzzing, once (JDK 17): every *FuzzTest for a short fixed time; `mvn verify` already replayed
# their seeds and saved crashes on this JDK and replays them again on JDK 25. Fails on any crash, or
# if no fuzz test is found. `scripts/fuzz.sh 600` fuzzes longer.
echo "== fuzzing: scripts/fuzz.sh ${STRATA_FUZZ_SECONDS:-20}"
scripts/fuzz.sh "${STRATA_FUZZ_SECONDS:-20}"

jdk25=${STRATA_JDK25:-/usr/lib/jvm/temurin-25-jdk-amd64}
if [ -x "$jdk25/bin/java" ]; then
  echo "== tests on $("$jdk25/bin/java" -version 2>&1 | head -n 1)"
  JAVA_HOME="$jdk25" mvn -B verify
elif [ "${CI:-}" = true ]; then
  echo "test.sh: CI=true but no JDK 25 at $jdk25" >&2
  exit 1
else
  echo "== no JDK 25 at $jdk25: skipped the second pass"
fi
