# What the gateway benchmarks share (sourced by bench/serve.sh and bench/serve-onnx.sh):
# server cleanup, CPU time of a server's processes from /proc, waiting for a port, and `run`,
# which checks one request answers 200, warms up with wrk for 3 s, measures for DUR seconds
# and appends one line (requests/s, p50, p99, CPU per request) to $W/results.txt.
# Needs: W (work directory), TOKEN (API key), CONN, DUR, PY (a python3), and a wrk script
# per request body: $W/request.json and $W/post.lua unless the fifth and sixth arguments name
# others.
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# cpu_ticks PID...: utime+stime of the processes and their live children.
cpu_ticks() {
  local total=0 p c
  for p in "$@"; do
    for c in $p $(pgrep -P "$p" || true); do
      [ -r "/proc/$c/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$c/stat")))
    done
  done
  echo "$total"
}

wait_port() { for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "bench: nothing on port $1" >&2; exit 1; }

# run NAME PORT PATH PID [REQUEST.json POST.lua]: warm up, measure, print one result line.
run() {
  local name=$1 port=$2 path=$3 pid=$4
  local request=${5:-$W/request.json} lua=${6:-$W/post.lua}
  local url="http://127.0.0.1:$port$path"
  local threads=$(( CONN < 2 ? CONN : 2 ))
  # The request must succeed before it is timed.
  local code
  code=$(curl -s -o "$W/check-$name.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $TOKEN" -H "X-API-Key: $TOKEN" --data-binary "@$request" "$url")
  [ "$code" = 200 ] || { echo "bench: $name answered $code: $(cat "$W/check-$name.json")" >&2; exit 1; }
  wrk -t"$threads" -c"$CONN" -d3s -s "$lua" "$url" > /dev/null
  local before after
  before=$(cpu_ticks "$pid")
  wrk -t"$threads" -c"$CONN" -d"${DUR}s" --latency -s "$lua" "$url" > "$W/wrk-$name.txt"
  after=$(cpu_ticks "$pid")
  "$PY" - "$name" "$W/wrk-$name.txt" "$((after - before))" "$(getconf CLK_TCK)" <<'PYEOF' | tee -a "$W/results.txt"
import re, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(path).read()
def secs(v, unit):
    return float(v) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
lat = {p: secs(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)}
done = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
sock = re.search(r"Socket errors: (.*)", text)
cpu_us = ticks / hz / max(done, 1) * 1e6
print(f"{name:8} {rps:10.1f} req/s  p50 {lat.get('50', float('nan'))*1e3:8.3f} ms  p99 {lat.get('99', float('nan'))*1e3:9.3f} ms  "
      f"cpu {cpu_us:9.1f} us/req  requests {done}  non-2xx {errors.group(1) if errors else 0}  {('socket errors: ' + sock.group(1)) if sock else ''}")
PYEOF
}

