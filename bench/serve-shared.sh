#!/usr/bin/env bash
# Scale-out costs, on one machine (2 shared cores): the gateway with its rate-limit cells and
# nonces in process against the same in Redis (`[storage] shared_state`), one replica and
# three; and the registry's register / promote / checkout with its metadata in SQLite against
# PostgreSQL (`[storage] registry`; blobs are files in both).
#   gateway: single-row V2 predictions of a 30-tree random forest, a key whose limits never
#            refuse (every request still asks the per-address and per-key cells); wrk -c$CONN
#            for DUR seconds after a 3-second warm-up. Three replicas: three wrk processes at
#            once, one per replica, CONN/3 connections each; requests/s summed, the worst p99.
#   registry: each command timed as a whole process (start-up included), median of RUNS.
# Servers: redis-server and PostgreSQL from Debian's packages, started here on free loopback
# ports (PostgreSQL as the postgres user when run as root), removed at the end.
#   registry backends: SQLite + files, PostgreSQL + files, PostgreSQL + S3 — the S3 server is
#            moto (PyPI moto[server] 5.1.18, Python, in memory; the venv the tests use under
#            target/tmp/venv-moto), so that column measures moto as much as rampart.
# Usage: bench/serve-shared.sh   (DUR=15 CONN=48 RUNS=7 PARTS="gateway registry" by default;
#        needs wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-15}
CONN=${CONN:-48}
RUNS=${RUNS:-7}
PARTS=${PARTS:-gateway registry}
command -v wrk >/dev/null || { echo "bench: install wrk (apt-get install wrk)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "bench: install redis-server" >&2; exit 1; }
INITDB=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)
PGBIN=$(dirname "$INITDB")
[ -x "$PGBIN/postgres" ] || { echo "bench: install postgresql" >&2; exit 1; }
cargo build --release --quiet -p rampart
R=$PWD/target/release/rampart
W=$PWD/target/bench/serve-shared
rm -rf "$W"
mkdir -p "$W"
PY=python3

. bench/serve-lib.sh
PGDIR=$(mktemp -d /tmp/rampart-bench-pg.XXXXXX)
cleanup_all() {
  cleanup
  if [ -f "$PGDIR/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop > /dev/null 2>&1 || true
  fi
  rm -rf "$PGDIR"
}
trap cleanup_all EXIT
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$PGDIR"

echo "== servers"
REDIS_PORT=18211
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no > /dev/null &
PIDS+=($!)
PG_PORT=18212
as_pg "$INITDB" -D "$PGDIR/data" -U rampart --auth=trust --no-sync > /dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
  -o "-p $PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1" start > /dev/null
PG_URL="postgres://rampart@127.0.0.1:$PG_PORT/postgres"

echo "== data and model"
"$PY" - "$W" <<'PYEOF'
import json, random, sys
w = sys.argv[1]
random.seed(0)
with open(f"{w}/train.csv", "w") as f:
    f.write(",".join(f"f{i}" for i in range(10)) + ",label\n")
    for n in range(4000):
        c = n % 2
        f.write(",".join(f"{random.gauss(c * 1.5, 1):.4f}" for _ in range(10)) + f",{c}\n")
row = [0.1 * i for i in range(10)]
json.dump({"id": "bench", "inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": row}]},
          open(f"{w}/request.json", "w"))
PYEOF
H=$W/home
"$R" --home "$H" init > /dev/null
"$R" --home "$H" data roots add "$W" > /dev/null
"$R" --home "$H" train --data "$W/train.csv" --label label --model random-forest --trees 30 --output "$W/run" > /dev/null
"$R" --home "$H" model register "$W/run" --name bench > /dev/null
"$R" --home "$H" model promote bench@1 --to staging > /dev/null
TOKEN=$("$R" --home "$H" --format json apikey create --rate 1000000 --burst 1000000 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
cat > "$W/post.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$W/request.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
POLICY=$H/rampart.toml
cp "$POLICY" "$W/policy-local.toml"
cp "$POLICY" "$W/policy-redis.toml"
printf '\n[storage]\nshared_state = "redis://127.0.0.1:%s/0"\n' "$REDIS_PORT" >> "$W/policy-redis.toml"

EXTRA=()
serve() { # PORT: a replica of the home, its limits never refusing
  "$R" --home "$H" serve --bind "127.0.0.1:$1" --model bench@staging \
    --ip-rate 1000000 --ip-burst 1000000 --extraction-budget 1000000000 "${EXTRA[@]}" 2>> "$W/serve.log" &
  PIDS+=($!); wait_port "$1"
}

# run3 NAME PORT1 PORT2 PORT3: three wrk at once, one per replica.
run3() {
  local name=$1; shift
  local c=$(( CONN / 3 )) p i=0
  for p in "$@"; do
    wrk -t1 -c"$c" -d3s -s "$W/post.lua" "http://127.0.0.1:$p/v2/models/bench/infer" > /dev/null &
  done
  wait_wrk
  for p in "$@"; do
    i=$((i + 1))
    wrk -t1 -c"$c" -d"${DUR}s" --latency -s "$W/post.lua" "http://127.0.0.1:$p/v2/models/bench/infer" > "$W/wrk-$name-$i.txt" &
  done
  wait_wrk
  "$PY" - "$name" "$W"/wrk-"$name"-*.txt <<'PYEOF' | tee -a "$W/results.txt"
import re, sys
name, paths = sys.argv[1], sys.argv[2:]
def secs(v, unit):
    return float(v) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
rps = p99 = 0.0
errors = 0
for p in paths:
    t = open(p).read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    lat = {q: secs(v, u) for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", t, re.M)}
    p99 = max(p99, lat["99"])
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    errors += int(e.group(1)) if e else 0
print(f"{name:8} {rps:10.1f} req/s  p50 {'-':>8} ms  p99 {p99*1e3:9.3f} ms  (three replicas)  non-2xx {errors}")
PYEOF
}
wait_wrk() { local j; for j in $(jobs -p); do case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j";; esac; done; }

: > "$W/results.txt"
if [[ " $PARTS " == *" gateway "* ]]; then
echo "== gateway, wrk -c$CONN -d${DUR}s"
# local/redis: extraction detection on (its tracking is shared too in Redis);
# local-nx/redis-nx: off, so only the limits and nonces are shared.
for mode in local redis local-nx redis-nx; do
  cp "$W/policy-${mode%-nx}.toml" "$POLICY"
  case $mode in *-nx) EXTRA=(--no-extraction-detection) ;; *) EXTRA=() ;; esac
  serve 18201
  run "1-$mode" 18201 /v2/models/bench/infer "${PIDS[-1]}"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  serve 18202; serve 18203; serve 18204
  run3 "3-$mode" 18202 18203 18204
  kill "${PIDS[-1]}" "${PIDS[-2]}" "${PIDS[-3]}"
  for p in "${PIDS[-1]}" "${PIDS[-2]}" "${PIDS[-3]}"; do wait "$p" 2>/dev/null || true; done
done
cp "$W/policy-local.toml" "$POLICY"
fi

: > "$W/registry.txt"
if [[ " $PARTS " == *" registry "* ]]; then
echo "== registry: register, promote, checkout (median of $RUNS, whole processes)"
MOTO=$PWD/target/tmp/venv-moto
if [ ! -x "$MOTO/bin/moto_server" ]; then
  python3 -m venv "$MOTO"
  "$MOTO/bin/pip" install --quiet "moto[server]==5.1.18"
fi
MOTO_PORT=18213
"$MOTO/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" > /dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$MOTO_PORT/rampart-bench")" = 200 ] && break
  sleep 0.2
done
for backend in sqlite postgres postgres-s3; do
  RH=$W/reg-$backend
  "$R" --home "$RH" init > /dev/null
  case $backend in
    postgres) printf '\n[storage]\nregistry = "%s"\n' "$PG_URL" >> "$RH/rampart.toml" ;;
    postgres-s3) printf '\n[storage]\nregistry = "%s"\nblobs = "s3://rampart-bench/%s"\n' "$PG_URL" "$backend" >> "$RH/rampart.toml" ;;
  esac
  if [ "$backend" = postgres-s3 ]; then
    export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
      AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  fi
  "$R" --home "$RH" trust add "$H/keys/signing.pub.pem" --name bench > /dev/null
  # Each backend its own model names (the two PostgreSQL homes share one database).
  for i in $(seq 1 "$RUNS"); do
    t0=$(date +%s%N)
    "$R" --home "$RH" model register "$W/run" --name "m${backend//-/}$i" > /dev/null
    t1=$(date +%s%N)
    "$R" --home "$RH" model promote "m${backend//-/}$i@1" --to staging > /dev/null
    t2=$(date +%s%N)
    "$R" --home "$RH" model checkout "m${backend//-/}$i@staging" --output "$W/out-$backend-$i" > /dev/null
    t3=$(date +%s%N)
    echo "$backend $(( (t1 - t0) / 1000 )) $(( (t2 - t1) / 1000 )) $(( (t3 - t2) / 1000 ))" >> "$W/registry.txt"
  done
done
fi

"$PY" - "$W/results.txt" "$W/registry.txt" <<'PYEOF'
import statistics, sys
r = {}
for line in open(sys.argv[1]):
    f = line.split()
    r[f[0]] = (float(f[1]), f[7])
for k, (rps, p99) in r.items():
    print(f"{k:8} {rps:9.0f} req/s  p99 {p99} ms")
for nx, what in [] if not r else (("", "limits, nonces and extraction tracking"), ("-nx", "limits and nonces (no extraction detection)")):
    print(f"{what}:")
    print(f"  one replica: Redis-backed / in process = {r['1-redis' + nx][0] / r['1-local' + nx][0]:.2f} (goal >= 0.75)")
    print(f"  three replicas: Redis-backed / in process = {r['3-redis' + nx][0] / r['3-local' + nx][0]:.2f}")
rows = {}
for line in open(sys.argv[2]):
    b, *t = line.split()
    rows.setdefault(b, []).append([int(x) for x in t])
for b, v in rows.items():
    med = [statistics.median(x[i] for x in v) / 1000 for i in range(3)]
    print(f"{b:12} register {med[0]:7.1f} ms  promote {med[1]:7.1f} ms  checkout {med[2]:7.1f} ms")
PYEOF
