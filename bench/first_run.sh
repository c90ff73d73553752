#!/usr/bin/env bash
# First run: wall time and peak memory of `make run` from a fresh clone to a served admin page.
#
#   bench/first_run.sh [REPO]
#
# REPO defaults to the repository holding this script; its HEAD commit is cloned (committed
# files only). Two runs in the same clone: "cold" (creates the venv, pip install, migrate,
# demo) and "warm" (venv already there). Each is timed until GET /admin/login/ answers 200.
# Memory: the process group's summed RSS sampled with ps every 0.5 s, plus the largest
# single process as /usr/bin/time -v reports it when that is installed.
#
# Environment: COLD_TIMEOUT (s, default 900), WARM_TIMEOUT (s, default 300),
# FIRST_RUN_PIP_CACHE=fresh|user (default fresh: an empty pip cache, as on a new machine),
# KEEP_CLONE=1 to keep the temporary clone, TIME_BIN (default /usr/bin/time; the RSS sampling
# alone is used when it is not executable).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results_dir="$here/results"
cold_timeout=${COLD_TIMEOUT:-900}
warm_timeout=${WARM_TIMEOUT:-300}
pip_cache=${FIRST_RUN_PIP_CACHE:-fresh}
sample_interval=0.5
time_bin=${TIME_BIN:-/usr/bin/time}

die() {
    echo "first_run.sh: $*" >&2
    exit 2
}

if [[ $# -ge 1 ]]; then
    repo=$1
else
    repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null) ||
        die "$here is not inside a git repository; pass the repository to clone"
fi
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 || die "$repo is not a git repository"
if ! commit=$(git -C "$repo" rev-parse --verify --quiet HEAD); then
    die "$repo has no commits yet, so a fresh clone would be empty: commit first (this measures what a clone of HEAD gets)"
fi
case $pip_cache in fresh | user) ;; *) die "FIRST_RUN_PIP_CACHE must be 'fresh' or 'user'" ;; esac

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/steward-first-run.XXXXXX")
clone="$tmpdir/steward"
leader=""

# A process that has exited but is not yet reaped still answers kill -0.
alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# The group's programs, not the time/make/shell chain above them.
group_programs() {
    ps -eo pid=,pgid=,comm= | awk -v g="$1" \
        '$2 == g && $3 !~ /^(time|make|sh|dash|bash|env|setsid)$/ {print $1}'
}

# wait_leader GROUP SECONDS: true once the leader has exited.
wait_leader() {
    local i
    for ((i = 0; i < $2 * 2; i++)); do
        alive "$1" || return 0
        sleep 0.5
    done
    ! alive "$1"
}

# TERM the programs (a Celery task in flight gets 20 s to finish), then KILL them: make and
# the shells exit once what they started is reaped, so time's report covers the tree.
# Then the leader, then KILL whatever is left.
stop_group() {
    local group=$1 pids
    pids=$(group_programs "$group")
    if [[ -n $pids ]]; then
        kill -TERM $pids 2>/dev/null || true
    fi
    if ! wait_leader "$group" 20; then
        pids=$(group_programs "$group")
        if [[ -n $pids ]]; then
            kill -KILL $pids 2>/dev/null || true
        fi
        wait_leader "$group" 10 || kill -TERM "$group" 2>/dev/null || true
    fi
    sleep 0.5
    if ps -eo pgid= | awk -v g="$group" '$1 == g {found = 1} END {exit !found}'; then
        kill -KILL -- "-$group" 2>/dev/null || true
    fi
    wait "$group" 2>/dev/null || true
}

cleanup() {
    if [[ -n $leader ]]; then
        stop_group "$leader"
        leader=""
    fi
    if [[ ${KEEP_CLONE:-0} == 1 ]]; then
        echo "clone kept in $clone"
    else
        rm -rf "$tmpdir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

http_status() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
    else
        python3 - "$1" <<'EOF' || true
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception:
    print(0)
EOF
    fi
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# Proportional set size of the sampled processes: shared pages split between their users.
tree_pss_kb() {
    local pid total=0 kb
    for pid in $(awk '{print $2}' "$1"); do
        kb=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null) || kb=0
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# Sets: r_status r_seconds r_install_s r_peak_kb r_pss_kb r_install_kb r_serve_kb r_time_kb r_samples
run_once() {
    local label=$1 timeout=$2 port log start rss pss code phase elapsed
    port=$(free_port)
    log="$tmpdir/$label.log"
    rm -f "$results_dir/first_run.$label.time" "$results_dir/first_run.$label.peak.txt"
    r_time_kb=""
    r_peak_kb=0 r_pss_kb=0 r_install_kb=0 r_serve_kb=0 r_samples=0 r_status=timeout r_seconds=""
    r_install_s=""
    local -a envs=(env -u DATABASE_URL -u REDIS_URL -u STEWARD_VAR_DIR -u STEWARD_ENV -u DEBUG
        -u SOURCE_HOSTS_ALLOW -u ALLOWED_HOSTS -u SECRET_KEY -u ENCRYPTION_KEYS
        -u ENCRYPTION_KEY -u VIRTUAL_ENV -u MAKEFLAGS "PORT=$port")
    [[ $pip_cache == fresh ]] && envs+=("PIP_CACHE_DIR=$tmpdir/pip-cache")
    local -a timer=()
    [[ -x $time_bin ]] && timer=("$time_bin" -v -o "$tmpdir/$label.time")

    echo "[$label] make run on 127.0.0.1:$port (timeout ${timeout}s, log $log)"
    start=$(now)
    # setsid: one new process group holding make, pip, migrate, the web server and celery.
    (cd "$clone" && exec setsid "${envs[@]}" "${timer[@]}" make run) >"$log" 2>&1 &
    leader=$!
    sleep 0.2
    if [[ $(ps -o pgid= -p "$leader" | tr -d ' ') != "$leader" ]]; then
        echo "[$label] warning: make run is not its own process group; RSS covers what is found" >&2
    fi

    while :; do
        ps -eo pgid=,pid=,rss=,args= | awk -v g="$leader" '$1 == g' >"$tmpdir/sample"
        rss=$(awk '{s += $3} END {print s + 0}' "$tmpdir/sample")
        pss=$(tree_pss_kb "$tmpdir/sample")
        if [[ -e $clone/.venv/.installed ]]; then phase=serve; else phase=install; fi
        if [[ $phase == serve && -z $r_install_s ]]; then r_install_s=$(since "$start"); fi
        if ((rss > r_peak_kb)); then
            r_peak_kb=$rss
            cp "$tmpdir/sample" "$tmpdir/$label.peak"
        fi
        if ((pss > r_pss_kb)); then r_pss_kb=$pss; fi
        if [[ $phase == install ]] && ((rss > r_install_kb)); then r_install_kb=$rss; fi
        if [[ $phase == serve ]] && ((rss > r_serve_kb)); then r_serve_kb=$rss; fi
        r_samples=$((r_samples + 1))
        code=$(http_status "http://127.0.0.1:$port/admin/login/")
        elapsed=$(since "$start")
        if [[ $code == 200 ]]; then
            r_status=ok
            r_seconds=$elapsed
            break
        fi
        if ! alive "$leader"; then
            r_status=exited
            r_seconds=$elapsed
            break
        fi
        if awk -v e="$elapsed" -v t="$timeout" 'BEGIN {exit !(e >= t)}'; then
            r_seconds=$elapsed
            break
        fi
        sleep "$sample_interval"
    done

    stop_group "$leader"
    leader=""
    if [[ -s $tmpdir/$label.time ]]; then
        r_time_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmpdir/$label.time")
    fi
    mkdir -p "$results_dir"
    cp "$log" "$results_dir/first_run.$label.log"
    if [[ -s $tmpdir/$label.time ]]; then
        cp "$tmpdir/$label.time" "$results_dir/first_run.$label.time"
    fi
    if [[ -s $tmpdir/$label.peak ]]; then
        cp "$tmpdir/$label.peak" "$results_dir/first_run.$label.peak.txt"
    fi
    echo "[$label] $r_status after ${r_seconds}s"
    if [[ $r_status != ok ]]; then
        echo "[$label] last lines of the log:" >&2
        tail -n 30 "$log" >&2
    fi
}

echo "Cloning $repo at ${commit:0:12} into $clone"
git clone --quiet --no-local "$repo" "$clone"

declare -A status seconds install_s peak pss install serve timekb samples
for label in cold warm; do
    if [[ $label == cold ]]; then timeout=$cold_timeout; else timeout=$warm_timeout; fi
    if [[ $label == warm && ${status[cold]} != ok ]]; then
        status[warm]=skipped seconds[warm]="" install_s[warm]="" peak[warm]=0 pss[warm]=0
        install[warm]=0 serve[warm]=0 timekb[warm]="" samples[warm]=0
        continue
    fi
    run_once "$label" "$timeout"
    status[$label]=$r_status seconds[$label]=$r_seconds peak[$label]=$r_peak_kb
    pss[$label]=$r_pss_kb install[$label]=$r_install_kb serve[$label]=$r_serve_kb timekb[$label]=$r_time_kb
    samples[$label]=$r_samples install_s[$label]=$r_install_s
done

row() { printf '%-5s  %-7s  %8s  %9s  %11s  %11s  %10s  %8s  %15s\n' "$@"; }
echo
echo "First run of 'make run' from a clone of ${commit:0:12} to GET /admin/login/ = 200"
row run result seconds "install s" "peak RSS MB" "peak PSS MB" "install MB" "serve MB" \
    "largest proc MB"
row ----- ------- -------- --------- ----------- ----------- ---------- -------- ---------------
for label in cold warm; do
    largest="n/a"
    if [[ -n ${timekb[$label]} ]]; then largest=$(mb "${timekb[$label]}"); fi
    row "$label" "${status[$label]}" "${seconds[$label]:-n/a}" "${install_s[$label]:-n/a}" \
        "$(mb "${peak[$label]}")" "$(mb "${pss[$label]}")" "$(mb "${install[$label]}")" \
        "$(mb "${serve[$label]}")" "$largest"
done
echo
echo "peak RSS/PSS MB: the largest sum over the process tree (make, pip, migrate, web server,"
echo "  celery worker and beat), sampled with ps and /proc every ${sample_interval}s; RSS counts"
echo "  shared pages once per process, PSS splits them. install s: when .venv/.installed first"
echo "  existed; install/serve MB: peak RSS before/after that. largest proc MB: /usr/bin/time -v"
echo "  maximum resident set size, the biggest single process. pip cache: $pip_cache."

json_num() { if [[ -n $1 ]]; then echo "$1"; else echo null; fi; }
json_mb() { if [[ -n $1 ]]; then mb "$1"; else echo null; fi; }
mkdir -p "$results_dir"
{
    printf '{\n  "benchmark": "first_run",\n'
    printf '  "repository": "%s",\n  "commit": "%s",\n' "$repo" "$commit"
    printf '  "time": "%s",\n  "cpus": %s,\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)"
    printf '  "pip_cache": "%s",\n  "sample_interval_s": %s,\n  "runs": {\n' \
        "$pip_cache" "$sample_interval"
    sep=""
    for label in cold warm; do
        printf '%s    "%s": {"status": "%s", "seconds_to_admin_200": %s, ' "$sep" "$label" \
            "${status[$label]}" "$(json_num "${seconds[$label]}")"
        printf '"seconds_to_installed": %s, ' "$(json_num "${install_s[$label]}")"
        printf '"peak_tree_rss_mb": %s, "peak_tree_pss_mb": %s, ' \
            "$(mb "${peak[$label]}")" "$(mb "${pss[$label]}")"
        printf '"peak_install_phase_rss_mb": %s, ' "$(mb "${install[$label]}")"
        printf '"peak_serve_phase_rss_mb": %s, "largest_process_rss_mb": %s, "samples": %s}' \
            "$(mb "${serve[$label]}")" "$(json_mb "${timekb[$label]}")" "${samples[$label]}"
        sep=$',\n'
    done
    printf '\n  }\n}\n'
} >"$results_dir/first_run.json"
echo "Results written to $results_dir/first_run.json"

[[ ${status[cold]} == ok && ${status[warm]} == ok ]]
