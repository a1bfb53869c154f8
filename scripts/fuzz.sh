#!/usr/bin/env bash
# Fuzzes every fuzz test of the project for SECONDS each (default 60): scripts/fuzz.sh [SECONDS]
#
# A fuzz test is a class named *FuzzTest in a module's src/test/java with one Jazzer @FuzzTest method
# (see the convention in README.md). `mvn verify` runs each in regression mode (its committed seeds
# and crashes under src/test/resources/<package>/<Class>Inputs/<method>/); this script runs each in
# fuzzing mode. Jazzer fuzzes only one fuzz test per JVM, so every class gets its own JVM, started
# with `java` on the module's test classpath (written once by Maven) instead of a Maven run each.
#
# A crash (an exception other than the parser's own format exception, an OutOfMemoryError, an input
# that runs longer than FUZZ_INPUT_TIMEOUT seconds) is written by Jazzer into that Inputs directory
# in the source tree, where `mvn verify` then replays it: commit it with the fix. The corpus that
# fuzzing grows stays in <module>/.cifuzz-corpus/ (not committed; later runs start from it).
#
# Prints per fuzz test: seconds run, executions, new crash files; exits 1 if any fuzz test crashed
# or failed to run, or if there are no fuzz tests at all.
# Environment: JAVA_HOME (the JDK to fuzz on), MVN_FLAGS (e.g. -o), FUZZ_INPUT_TIMEOUT (default 30),
# FUZZ_ONLY (a regex on class names: fuzz only those).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (SECONDS per fuzz test, a positive integer; got '$seconds')" >&2
  exit 2
fi
input_timeout=${FUZZ_INPUT_TIMEOUT:-30}

# Every *FuzzTest class, as module and fully qualified name.
mapfile -t sources < <(find . -path ./.git -prune -o -path '*/target' -prune -o \
    -path '*/src/test/java/*' -name '*FuzzTest.java' -print | sed 's|^\./||' | sort)
if [ -n "${FUZZ_ONLY:-}" ]; then
  mapfile -t sources < <(printf '%s\n' "${sources[@]}" | grep -E -- "$FUZZ_ONLY" || true)
fi
if [ "${#sources[@]}" -eq 0 ] || [ -z "${sources[0]}" ]; then
  echo "fuzz.sh: no fuzz tests found (classes named *FuzzTest under */src/test/java${FUZZ_ONLY:+ matching '$FUZZ_ONLY'})" >&2
  exit 1
fi
modules=$(printf '%s\n' "${sources[@]}" | sed 's|/src/test/java/.*||' | sort -u | paste -sd, -)

java=${JAVA_HOME:+$JAVA_HOME/bin/}java
release="$(dirname "$(dirname "$(readlink -f "$(command -v "$java")")")")/release"
if [ -f "$release" ]; then
  version=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$release" | head -n 1)
else
  version=$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
fi
major=${version%%.*}

# The tests' JVM flags, as surefire passes them (the parent pom's strata.jvm.flags, one line).
read -r -a flags <<<"$(sed -n 's:.*<strata.jvm.flags>\(.*\)</strata.jvm.flags>.*:\1:p' pom.xml)"
if [ "${#flags[@]}" -eq 0 ]; then
  echo "fuzz.sh: cannot read strata.jvm.flags from pom.xml" >&2
  exit 1
fi
if [ "${major:-17}" -ge 23 ]; then
  flags+=(--sun-misc-unsafe-memory-access=allow -XX:+EnableDynamicAgentLoading)
fi
flags+=(-Xmx1g -Dorg.slf4j.simpleLogger.defaultLogLevel=off -Djunit.jupiter.execution.timeout.mode=disabled)

echo "== fuzz.sh: ${#sources[@]} fuzz test(s) in $modules, ${seconds}s each, on Java $version"
# One Maven run: build the modules and what they depend on, tests compiled but not run (seeds land
# in target/test-classes), and write each module's test classpath. `package`, not `test-compile`:
# a module's classpath names the test jars of the modules it depends on (core-blockmap's), which
# only `package` brings up to date.
mvn_log=$(mktemp)
trap 'rm -f "$mvn_log"' EXIT
# shellcheck disable=SC2086
if ! mvn -B -q ${MVN_FLAGS:-} -Dstyle.color=never -pl "$modules" -am package -DskipTests dependency:build-classpath \
    -Dmdep.includeScope=test -Dmdep.outputFile=target/fuzz-classpath.txt >"$mvn_log" 2>&1; then
  cat "$mvn_log" >&2
  echo "fuzz.sh: compiling the fuzz tests failed" >&2
  exit 1
fi

fixtures=${STRATA_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
results=()
failed=0
for src in "${sources[@]}"; do
  module=${src%%/src/test/java/*}
  class=${src#*/src/test/java/}
  class=${class%.java}
  class=${class//\//.}
  name=${class##*.}
  log=$module/target/fuzz/$name.log
  mkdir -p "$module/target/fuzz"
  cp="target/test-classes:target/classes:$(cat "$module/target/fuzz-classpath.txt")"
  started=$(date +%s)
  set +e
  # Jazzer's own driver runs the JUnit fuzz test in fuzzing mode; crashes go to the Inputs directory
  # under src/test/resources (found from the working directory, the module). libFuzzer also writes
  # an input slower than -report_slow_units there (10 s by default, easily reached on a loaded
  # machine): only inputs past the -timeout count, so that report is moved out of the way.
  (cd "$module" && STRATA_FIXTURES="$fixtures" JAZZER_FUZZ=1 timeout --kill-after=10 $((seconds + 180)) \
      "$java" "${flags[@]}" -cp "$cp" com.code_intelligence.jazzer.Jazzer \
      --target_class="$class" --instrument='io.strata.**' --max_duration="${seconds}s" -timeout="$input_timeout" \
      -report_slow_units=$((input_timeout + 1)) \
      >"target/fuzz/$name.log" 2>&1)
  rc=$?
  set -e
  took=$(( $(date +%s) - started ))
  runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
  crashes=$(grep -c 'Test unit written to' "$log" || true)
  status=ok
  if [ "$crashes" -gt 0 ]; then
    status=CRASH
    grep -o 'Test unit written to .*' "$log" | sed "s|^|    $name: |"
    grep -m 1 -A 6 '^== Java Exception' "$log" | sed "s|^|    |" || true
  elif [ "$rc" -ne 0 ] || [ -z "$runs" ] || [ "$runs" -eq 0 ]; then
    status="FAILED (exit $rc, no fuzzing run; see $log)"
    tail -n 15 "$log" | sed "s|^|    |"
  fi
  [ "$status" = ok ] || failed=1
  results+=("$(printf '%-28s %6ss %10s execs %3s new crash(es)  %s' "$name" "$took" "${runs:-0}" "$crashes" "$status")")
  echo "${results[-1]}"
done

echo "== fuzz.sh summary (logs in <module>/target/fuzz/):"
printf '  %s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz.sh: a fuzz test crashed or did not run: fix the bug and commit the crash file as a regression input" >&2
  exit 1
fi
