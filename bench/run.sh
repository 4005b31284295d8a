#!/usr/bin/env bash
# Load test of gatecheck against the real server on loopback, beside a bare
# net/http baseline, in one run (issue #5). See bench/README.md.
#
#   bash bench/run.sh
#
# Environment: BENCH_SECONDS (per main scenario, 10), BENCH_STAFF_SECONDS
# (per staff scenario, 6), BENCH_STAFF_CONNS (4), BENCH_CASES (100000),
# BENCH_KEEP=1 keeps the work folder (database, logs, wrk output) and prints
# where it is, BENCH_PROFILE=1 also keeps a CPU profile of the server for
# each scenario there (go tool pprof -top WORK/bin/gatecheck WORK/NAME.pprof).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_MAIN=${BENCH_SECONDS:-10}
SECONDS_STAFF=${BENCH_STAFF_SECONDS:-6}
CASES=${BENCH_CASES:-100000}
WALKERS=4096 # cases on a question step, for the answer scenario
WARM=512     # of which this many are used to warm up
THREADS=2
PAGE_CONNS=64
ANSWER_CONNS=32
STAFF_CONNS=${BENCH_STAFF_CONNS:-4}

for tool in wrk curl go; do
	command -v "$tool" >/dev/null || { echo "bench: needs $tool (wrk: apt-get install -y wrk)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/gatecheck-bench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ ${BENCH_KEEP:-} == 1 ]]; then
		echo "bench: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# listening FILE: waits for a "http://ADDR/" line in FILE and prints ADDR.
listening() {
	local addr
	for _ in $(seq 100); do
		addr=$(sed -n 's#.*serving http://\([^/ ]*\)/.*#\1#p' "$1" | head -n1)
		if [[ -n $addr ]]; then echo "$addr"; return; fi
		sleep 0.1
	done
	echo "bench: nothing listening; see $1" >&2
	return 1
}

say "building into $work/bin"
go build -o "$work/bin/" ./cmd/gatecheck ./bench/seed ./bench/baseline

say "seeding $CASES cases and $WALKERS wizard cases"
db=$work/bench.db
"$work/bin/seed" -db "$db" -cases "$CASES" -walkers "$WALKERS" -out "$work" >&2
head -n "$WARM" "$work/walkers.txt" >"$work/warm.txt"
tail -n +"$((WARM + 1))" "$work/walkers.txt" >"$work/answer.txt"
password=bench-password-$RANDOM$RANDOM
printf '%s\n' "$password" | "$work/bin/gatecheck" user add --db "$db" bench >/dev/null

profile=()
[[ ${BENCH_PROFILE:-} == 1 ]] && profile=(--pprof 127.0.0.1:0) && export BENCH_KEEP=1
"$work/bin/gatecheck" serve --addr 127.0.0.1:0 --db "$db" --allow-net 127.0.0.0/8 --samples 1 \
	--probes-per-minute 600 "${profile[@]}" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
pids+=("$server_pid")
app=http://$(listening "$work/server.out")
prof=$(sed -n 's#^profiler on \(http://[^ ]*/debug/pprof/\)$#\1#p' "$work/server.out")

# Resident memory of the server, sampled until it exits.
(
	while [[ -r /proc/$server_pid/status ]]; do
		awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || true
		sleep 0.2
	done
) >"$work/rss.kb" &
pids+=("$!")

step_url=$app/c/$(cat "$work/step.txt")
read -r code size < <(curl -s -o "$work/step.html" -w '%{http_code} %{size_download}\n' "$step_url")
if [[ $code != 200 ]] || ! grep -q 'Who are you in this?' "$work/step.html"; then
	echo "bench: the step page answered $code without the question; see $work/step.html" >&2
	exit 1
fi

"$work/bin/baseline" -addr 127.0.0.1:0 -size "$size" >"$work/baseline.out" 2>&1 &
pids+=("$!")
base=http://$(listening "$work/baseline.out")

cookie=$(curl -s -o /dev/null -D - -H 'Sec-Fetch-Site: same-origin' --data-urlencode name=bench \
	--data-urlencode "password=$password" "$app/staff/login" | sed -n 's/^[Ss]et-[Cc]ookie: \(gatecheck_session=[^;]*\).*/\1/p')
if [[ -z $cookie ]]; then
	echo "bench: staff sign-in failed" >&2
	exit 1
fi

# wrk_run NAME CONNS SECONDS URL [HEADER] [-- LUA ARGS]: runs wrk, keeps its
# output in $work/wrk-NAME.txt and prints its RESULT line.
wrk_run() {
	local name=$1 conns=$2 secs=$3 url=$4 header=${5:-}
	shift 5 || shift $#
	local args=(-t"$THREADS" -c"$conns" -d"$secs"s --latency -s bench/wrk.lua)
	[[ -n $header ]] && args+=(-H "$header")
	local cpu=
	if [[ -n $prof && $name != warm-* && $name != baseline ]]; then
		curl -s -o "$work/$name.pprof" "${prof}profile?seconds=$((secs - 1))" &
		cpu=$!
	fi
	wrk "${args[@]}" "$url" "$@" >"$work/wrk-$name.txt" 2>&1 || true
	[[ -z $cpu ]] || wait "$cpu" || true
	grep '^RESULT' "$work/wrk-$name.txt" || { echo "bench: wrk failed; see $work/wrk-$name.txt" >&2; exit 1; }
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

rows=()
# row SCENARIO CONNS RESULT VS GOAL VERDICT NOTE
row() { rows+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$1" "$2" \
	"$(field rps "$3")" "$(field p50 "$3")" "$(field p95 "$3")" "$(field p99 "$3")" "$(field errors "$3")" "$4" "$5" "$6" "$7")"); }
# check AWK-CONDITION over the named values: prints PASS or MISS.
check() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }

say "warming up"
wrk_run warm-base 8 2 "$base/" >/dev/null
wrk_run warm-step 8 2 "$step_url" >/dev/null
wrk_run warm-answer 8 2 "$app/" "" -- answer "$work/warm.txt" "$THREADS" >/dev/null
wrk_run warm-staff 4 2 "$app/staff?q=portal" "Cookie: $cookie" >/dev/null

say "baseline: $size-byte page, $PAGE_CONNS connections, ${SECONDS_MAIN}s"
r=$(wrk_run baseline "$PAGE_CONNS" "$SECONDS_MAIN" "$base/")
base_rps=$(field rps "$r")
row "baseline (bare net/http, same bytes)" "$PAGE_CONNS" "$r" "100%" "-" "-" "$size bytes"

say "wizard step page"
r=$(wrk_run step "$PAGE_CONNS" "$SECONDS_MAIN" "$step_url")
rps=$(field rps "$r") p99=$(field p99 "$r") errs=$(field errors "$r")
vs=$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { printf "%.0f%%", 100 * a / b }')
row "wizard step page GET /c/{token}" "$PAGE_CONNS" "$r" "$vs" ">=50% base, p99<20ms" \
	"$(check "$rps >= 0.5 * $base_rps && $p99 < 20 && $errs == 0")" "$size bytes"

say "wizard answers"
before=$("$work/bin/seed" -db "$db" -count-steps)
r=$(wrk_run answer "$ANSWER_CONNS" "$SECONDS_MAIN" "$app/" "" -- answer "$work/answer.txt" "$THREADS")
after=$("$work/bin/seed" -db "$db" -count-steps)
writes=$((after - before))
locked=$(grep -ci 'database is locked' "$work/server.log" || true)
rps=$(field rps "$r") errs=$(field errors "$r") reqs=$(field requests "$r")
row "wizard answers POST /c/{token}/answer" "$ANSWER_CONNS" "$r" "-" ">=1000/s, 0 errors, 0 locked" \
	"$(check "$rps >= 1000 && $errs == 0 && $locked == 0 && $writes >= $reqs")" "$writes writes, $locked locked"

staff() { # NAME QUERY
	local name=$1 query=$2 total
	total=$(curl -s -H "Cookie: $cookie" "$app/staff$query" | sed -n 's#.*<p class="muted">\(More than \)\{0,1\}\([0-9]*\) cases</p>.*#\1\2#p' | sed 's/More than />/' | head -n1)
	say "staff: $name"
	r=$(wrk_run "staff-${query//[^a-z0-9]/_}" "$STAFF_CONNS" "$SECONDS_STAFF" "$app/staff$query" "Cookie: $cookie")
	row "$name GET /staff$query" "$STAFF_CONNS" "$r" "-" "p95<50ms" \
		"$(check "$(field p95 "$r") < 50 && $(field errors "$r") == 0")" "${total:-?} matching"
}
staff "staff list, first page" ""
staff "staff list, filtered" "?status=escalated"
staff "search, rare word" "?q=zanzibar"
staff "search, shared host" "?q=portal"
staff "search, ticket prefix" "?q=INC004"
staff "search and filter (extra)" "?status=open&q=example-corp"

hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
rss_max=$(sort -n "$work/rss.kb" | tail -n1)
# wrk stops with requests in flight; the server logs those as cancelled.
errors_logged=$(grep 'level=ERROR' "$work/server.log" | grep -cv 'context canceled\|broken pipe\|connection reset' || true)
disconnects=$(grep 'level=ERROR' "$work/server.log" | grep -c 'context canceled\|broken pipe\|connection reset' || true)

echo
{
	printf 'scenario\tconns\treq/s\tp50 ms\tp95 ms\tp99 ms\terrors\tvs base\tgoal\tresult\tnote\n'
	printf '%s\n' "${rows[@]}"
	printf 'server peak RSS (VmHWM)\t-\t-\t-\t-\t-\t-\t-\t<150 MB\t%s\t%d MB (max sampled VmRSS %d MB)\n' \
		"$(check "$hwm < 150 * 1024")" "$((hwm / 1024))" "$((${rss_max:-0} / 1024))"
} | column -t -s $'\t'
echo
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); server log: $errors_logged errors, $disconnects requests cut off when wrk stopped"
echo "wrk -t$THREADS, ${SECONDS_MAIN}s per main scenario, ${SECONDS_STAFF}s per staff one; $CASES generated cases"
