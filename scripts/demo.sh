#!/usr/bin/env bash
# scripts/demo.sh — strata's main job on local servers, end to end:
#   1. start the local servers (scripts/services.sh up),
#   2. create the three JobFirst schemas (future, dao, blockchain) with a few tables,
#   3. run the three replicators (`strata run --config examples/jobfirst.toml --all`),
#   4. write a stream of inserts, updates and deletes into all three schemas (and into a
#      schema no version owns, which must go nowhere),
#   5. wait until every version has checkpointed past the last write, stop strata cleanly,
#   6. show where each version's rows landed in MongoDB, Redis, OpenSearch and PostgreSQL.
# Re-runnable: it drops and recreates the demo schemas and targets each time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PGOPTIONS="-c client_min_messages=warning"

CONFIG=examples/jobfirst.toml
VERSIONS=(future dao blockchain)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting local servers"
scripts/services.sh up
eval "$(scripts/services.sh env)"

say "building strata"
cargo build --quiet --bin strata
STRATA=target/debug/strata

MYSQL=(mariadb --no-defaults -uroot -h127.0.0.1 -P3307 --batch --skip-column-names)
VENV_PY=${STRATA_CACHE_DIR:-/var/cache/strata}/venv/bin/python

say "resetting the JobFirst schemas and their targets"
for v in "${VERSIONS[@]}" shadow; do
  "${MYSQL[@]}" -e "DROP DATABASE IF EXISTS jobfirst_$v; CREATE DATABASE jobfirst_$v;
    CREATE TABLE jobfirst_$v.users (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(100) NOT NULL,
      email VARCHAR(200), password_hash VARBINARY(64), updated_at DATETIME(6) NOT NULL);
    CREATE TABLE jobfirst_$v.jobs (id INT PRIMARY KEY, title VARCHAR(200), salary DECIMAL(12,2),
      tags SET('remote','onsite','senior'), posted_at TIMESTAMP(3) NULL, details JSON);
    CREATE TABLE jobfirst_$v.applications (user_id BIGINT UNSIGNED, job_id INT,
      status ENUM('applied','interview','offer','rejected'), PRIMARY KEY (user_id, job_id));"
done
rm -rf .strata
redis-cli -p 6380 -n 0 FLUSHDB >/dev/null; redis-cli -p 6380 -n 3 FLUSHDB >/dev/null
redis-cli -p 6380 -n 6 FLUSHDB >/dev/null
for v in "${VERSIONS[@]}"; do
  psql -q -h 127.0.0.1 -p 5433 -U postgres -c "DROP SCHEMA IF EXISTS jobfirst_$v CASCADE" >/dev/null
  curl -s -o /dev/null -X DELETE "http://127.0.0.1:9201/jobfirst_${v}_*" || true
  "$VENV_PY" -c "import pymongo,sys; pymongo.MongoClient('mongodb://127.0.0.1:27019').drop_database(sys.argv[1])" "jobfirst_$v"
done

say "running the three replicators: $STRATA run --config $CONFIG --all"
$STRATA run --config "$CONFIG" --all >.strata-demo.log 2>&1 &
STRATA_PID=$!
trap 'kill $STRATA_PID 2>/dev/null || true' EXIT
# Each version writes its first checkpoint (its start position) before it streams.
for v in "${VERSIONS[@]}"; do
  for _ in $(seq 1 300); do [[ -f .strata/$v/checkpoint.json ]] && break; sleep 0.1; done
  [[ -f .strata/$v/checkpoint.json ]] || { tail -30 .strata-demo.log; echo "version $v did not start" >&2; exit 1; }
done

say "writing a stream of changes into every schema"
for v in "${VERSIONS[@]}" shadow; do
  sql="SET @now = NOW(6);"
  for i in $(seq 1 20); do
    sql+="INSERT INTO jobfirst_$v.users VALUES ($i, 'user $i of $v', 'u$i@$v.example', UNHEX(SHA2('pw$i',256)), @now);"
    sql+="INSERT INTO jobfirst_$v.jobs VALUES ($i, 'job $i at $v', $i * 1000.50, 'remote,senior', NOW(3), JSON_OBJECT('level', $i, 'pay', 12.75));"
    sql+="INSERT INTO jobfirst_$v.applications VALUES ($i, $i, 'applied');"
  done
  sql+="UPDATE jobfirst_$v.users SET name = CONCAT(name, ' (edited)'), updated_at = NOW(6) WHERE id <= 5;"
  sql+="UPDATE jobfirst_$v.applications SET status = 'offer' WHERE user_id = 3;"
  sql+="DELETE FROM jobfirst_$v.jobs WHERE id > 15;"
  sql+="START TRANSACTION; DELETE FROM jobfirst_$v.users WHERE id = 20; UPDATE jobfirst_$v.jobs SET salary = salary + 1 WHERE id = 1; COMMIT;"
  "${MYSQL[@]}" -e "$sql"
done

say "waiting until every version has applied everything"
END=$("${MYSQL[@]}" -e "SHOW MASTER STATUS" | awk '{print $1":"$2}')
for v in "${VERSIONS[@]}"; do
  for _ in $(seq 1 600); do
    pos=$("$VENV_PY" -c "import json,sys; c=json.load(open(sys.argv[1])); print(c['position']['file']+':'+str(c['position']['pos']))" ".strata/$v/checkpoint.json" 2>/dev/null || true)
    [[ $pos == "$END" ]] && break
    sleep 0.1
  done
  echo "  $v checkpoint: $pos (server end: $END)"
done
kill -TERM $STRATA_PID; wait $STRATA_PID || true; trap - EXIT

say "where each version's rows landed"
for v in "${VERSIONS[@]}"; do
  printf '\n-- version %s (source schema jobfirst_%s: %s users, %s jobs, %s applications)\n' "$v" "$v" \
    "$("${MYSQL[@]}" -e "SELECT COUNT(*) FROM jobfirst_$v.users")" \
    "$("${MYSQL[@]}" -e "SELECT COUNT(*) FROM jobfirst_$v.jobs")" \
    "$("${MYSQL[@]}" -e "SELECT COUNT(*) FROM jobfirst_$v.applications")"
  printf '   PostgreSQL schema jobfirst_%s: ' "$v"
  psql -At -h 127.0.0.1 -p 5433 -U postgres -c "SELECT string_agg(t || '=' || n, ' ') FROM (
      SELECT 'users' t, COUNT(*) n FROM jobfirst_$v.users UNION ALL
      SELECT 'jobs', COUNT(*) FROM jobfirst_$v.jobs UNION ALL
      SELECT 'applications', COUNT(*) FROM jobfirst_$v.applications) c"
  printf '   MongoDB database jobfirst_%s: ' "$v"
  "$VENV_PY" -c "import pymongo,sys; db=pymongo.MongoClient('mongodb://127.0.0.1:27019')[sys.argv[1]]; print(' '.join(f'{c}={db[c].count_documents({})}' for c in ('users','jobs','applications')))" "jobfirst_$v"
  printf '   OpenSearch indices jobfirst_%s_*: ' "$v"
  curl -s -X POST "http://127.0.0.1:9201/jobfirst_${v}_*/_refresh" >/dev/null
  for t in users jobs applications; do
    printf '%s=%s ' "$t" "$(curl -s "http://127.0.0.1:9201/jobfirst_${v}_$t/_count" | "$VENV_PY" -c 'import json,sys; print(json.load(sys.stdin).get("count","?"))')"
  done
  echo
done
printf '   Redis: '
for db in 0 3 6; do printf 'db%s=%s keys  ' "$db" "$(redis-cli -p 6380 -n "$db" DBSIZE)"; done
printf '\n\nA sample row, user 3 of version dao, in each store:\n'
psql -At -h 127.0.0.1 -p 5433 -U postgres -c "SELECT row_to_json(u) FROM jobfirst_dao.users u WHERE id = 3"
redis-cli -p 6380 -n 3 --scan --pattern '*users:3' | head -1 | xargs -r redis-cli -p 6380 -n 3 HGETALL | paste -sd' '
"$VENV_PY" -c "import pymongo; print(pymongo.MongoClient('mongodb://127.0.0.1:27019')['jobfirst_dao']['users'].find_one({'_id': 3}))"
curl -s "http://127.0.0.1:9201/jobfirst_dao_users/_doc/3"; echo
leaks=$(psql -At -h 127.0.0.1 -p 5433 -U postgres -c "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'jobfirst_shadow'")
leaks=$((leaks + $(curl -s "http://127.0.0.1:9201/_cat/indices/jobfirst_shadow*?h=index" | grep -c . || true)))
leaks=$((leaks + $("$VENV_PY" -c "import pymongo; print(int('jobfirst_shadow' in pymongo.MongoClient('mongodb://127.0.0.1:27019').list_database_names()))")))
for db in 0 3 6; do leaks=$((leaks + $(redis-cli -p 6380 -n "$db" --scan --pattern '*shadow*' | wc -l))); done
if [[ $leaks -eq 0 ]]; then
  printf '\nNothing from jobfirst_shadow (owned by no version) reached any target. Log: .strata-demo.log\n'
else
  printf '\n%s objects of jobfirst_shadow leaked into a target: isolation is broken. Log: .strata-demo.log\n' "$leaks"
  exit 1
fi
