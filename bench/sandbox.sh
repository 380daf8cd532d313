#!/usr/bin/env bash
# Sandbox start-up cost beside the tools people already use to start a confined process:
#   rampart-sandbox-exec  mount/net/IPC/PID/UTS namespaces (and a user namespace unless
#                         root), a root built from nothing (tmpfs, pivot_root, read-only
#                         binds, /dev, a fresh /proc), Landlock, two seccomp filters, rlimits,
#                         an unprivileged uid (as root), pids and memory cgroups where
#                         writable, timeout watch
#   bwrap                 bubblewrap with --unshare-all, read-only binds of the system
#                         paths and a fresh /proc (no seccomp, no Landlock)
#   unshare               util-linux: -U -r -n -p -f -m --mount-proc (namespaces only)
#   plain                 the program started directly
# Each runs /bin/true and `python3 -c pass` (Debian's /usr/bin/python3). hyperfine, median
# of RUNS runs after warm-up; the figure to read is the median minus plain's.
# Usage: bench/sandbox.sh            (RUNS=200 by default; needs hyperfine and bubblewrap)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
for t in hyperfine bwrap unshare; do
  command -v "$t" >/dev/null || { echo "bench: install $t (apt-get install hyperfine bubblewrap util-linux)" >&2; exit 1; }
done
cargo build --release --quiet -p rampart-sandbox
X=$PWD/target/release/rampart-sandbox-exec
W=$PWD/target/bench/sandbox
mkdir -p "$W"
spec() { # spec PROGRAM ARGS_JSON FILE
  cat > "$3" <<JSON
{"program":"$1","args":$2,"env":[["PATH","/usr/bin:/bin"]],"cwd":"/",
 "read":["/usr","/lib","/lib64","/bin","/etc/ld.so.cache"],"write":[],"hide":[],
 "limits":{"wall_ms":60000,"cpu_seconds":60,"memory_bytes":4294967296,"file_size_bytes":1073741824,"open_files":1024,"processes":256},
 "strict":true}
JSON
}
spec /bin/true '[]' "$W/true.json"
spec /usr/bin/python3 '["-c","pass"]' "$W/python.json"
BWRAP="bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --ro-bind /lib /lib --ro-bind /lib64 /lib64 --ro-bind /bin /bin --ro-bind /etc/ld.so.cache /etc/ld.so.cache --proc /proc --dev /dev"
UNSHARE="unshare -U -r -n -p -f -m --mount-proc"
uname -r
for prog in "/bin/true" "/usr/bin/python3 -c pass"; do
  json=$W/true.json; [ "$prog" = "/bin/true" ] || json=$W/python.json
  hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$W/result-$(basename "${prog%% *}").json" \
    -n plain "$prog" \
    -n rampart-sandbox "$X $json" \
    -n bwrap "$BWRAP $prog" \
    -n unshare "$UNSHARE $prog" 2>&1 | grep -vE '^\s*$'
done
python3 - "$W" <<'PY'
import json, sys, statistics
w = sys.argv[1]
for name in ("true", "python3"):
    r = {x["command"]: x for x in json.load(open(f"{w}/result-{name}.json"))["results"]}
    base = statistics.median(r["plain"]["times"])
    print(f"{name}: " + "  ".join(
        f"{k} {statistics.median(v['times'])*1e3:.2f} ms (+{(statistics.median(v['times'])-base)*1e3:.2f})"
        for k, v in r.items()))
PY
