#!/usr/bin/env bash
# The whole test suite: host tools, then every module's tests on JDK 17 (the default java) and again
# on JDK 25 when one is installed (Strata must build and run on both).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== tests on $(java -version 2>&1 | head -n 1)"
mvn -B verify

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
