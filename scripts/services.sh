#!/usr/bin/env bash
# scripts/services.sh — the real servers strata's tests talk to, on private loopback ports.
#
#   scripts/services.sh up             install what is missing, start every server, wait until ready
#   scripts/services.sh down [--purge] stop the servers this checkout started (--purge: delete .services/)
#   scripts/services.sh status         one line per server: name, port, up/down
#   scripts/services.sh env            `export STRATA_TEST_*_URL=...` lines, for eval "$(... env)"
#
# How each server is obtained on these machines (Debian 12, root, no containers, only
# apt/PyPI/crates.io/npm reachable) is described in shared/docs/test-services.md; this
# script follows it. Summary:
#   mariadb (3307) + mariadb-stmt (3309) + mariadb-nobinlog (3310) + mariadb-scratch (3311):
#       Debian's MariaDB 10.11, four independent instances with different binlog settings.
#   mysql (3308): Oracle MySQL 9.x from Debian sid, run inside a sid chroot built once per
#       machine with mmdebstrap (sid's binaries need a newer glibc than Debian 12 has).
#   redis (6380), postgres (5433): Debian's Redis 7 and PostgreSQL 15.
#   mongo (27019): SecantusDB (MongoDB wire protocol) from PyPI.
#   opensearch (9201): osmem-server (OpenSearch REST API, in memory) from PyPI.
#
# State: everything per checkout lives in <repo>/.services/<server>/ (data dir, `log`, `pid`);
# what is expensive and shared by every checkout on the machine (the sid chroot, the Python
# venv) lives in ${STRATA_CACHE_DIR:-/var/cache/strata}. The stock services a machine may
# already run (MariaDB 3306, PostgreSQL 5432, Redis 6379) are never touched.
#
# Ports are fixed, so two checkouts on one machine share servers: when a port is already
# served by the right kind of server that this checkout did not start (e.g. a CI clone on a
# machine where a developer's checkout left its servers up), `up` uses it and `down` leaves it.
#
# Environment: STRATA_CACHE_DIR (machine cache, above), STRATA_DEBIAN_MIRROR (overrides the
# mirror read from /etc/apt), STRATA_SERVICES_TIMEOUT (seconds to wait per server, default 60).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SVC=$REPO/.services
CACHE=${STRATA_CACHE_DIR:-/var/cache/strata}
ROOTFS=$CACHE/mysql-sid-root
VENV=$CACHE/venv
PG_BIN=/usr/lib/postgresql/15/bin
# Two checkouts on one machine share the chroot; this hash keeps their MySQL data apart.
REPO_HASH=$(printf '%s' "$REPO" | sha256sum | cut -c1-12)
# .services/mysql is bind-mounted here inside the chroot, so MySQL's data stays in the repo.
MYSQL_INNER=/strata/$REPO_HASH
# PyPI packages for the venv, pinned so every machine tests against the same servers
# (SecantusDB is a pre-release). Changing these makes the next `up` that starts them reinstall.
PIP_REQS=(secantusdb==0.7.0b3 osmem-server==0.1.6)

SERVERS=(mariadb mysql mariadb-stmt mariadb-nobinlog mariadb-scratch redis postgres mongo opensearch)
declare -A PORT=(
  [mariadb]=3307 [mysql]=3308 [mariadb-stmt]=3309 [mariadb-nobinlog]=3310 [mariadb-scratch]=3311
  [redis]=6380 [postgres]=5433 [mongo]=27019 [opensearch]=9201
)
# Binlog settings of the MariaDB instances (ROW/FULL/FULL is what strata needs; the others
# exist for preflight tests that must reject a misconfigured source).
ROW_BINLOG="--log-bin=binlog --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL"
declare -A MARIADB_BINLOG=(
  [mariadb]=$ROW_BINLOG
  [mariadb-stmt]="--log-bin=binlog --binlog-format=STATEMENT"
  [mariadb-nobinlog]=""
  [mariadb-scratch]=$ROW_BINLOG
)
# Seconds to wait for a server to answer after it was launched (STRATA_SERVICES_TIMEOUT).
READY_TIMEOUT=${STRATA_SERVICES_TIMEOUT:-60}
MYSQL_READY_TIMEOUT=180   # first start after --initialize can be slow on 2 cores

FAILED=()   # servers that did not come up (reported at the end of `up`)

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Process bookkeeping
# ---------------------------------------------------------------------------------------------

# The pid this checkout recorded for server $1, if that process is still running. The
# process's command line must mention the server's port, so a pid recycled by an unrelated
# process (e.g. after a reboot) is not mistaken for ours.
live_pid() {
  local f=$SVC/$1/pid pid cmd
  [[ -r $f ]] || return 1
  read -r pid <"$f" 2>/dev/null || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"${PORT[$1]}"* ]] || return 1
  echo "$pid"
}

# Something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp; instant on loopback).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Started by this checkout, still running and listening: the cheap check `up` and `status` use.
is_up() { live_pid "$1" >/dev/null && port_open "${PORT[$1]}"; }

# Start "$@" detached for server $1: own session (setsid) so it survives the caller's
# terminal and job control, stdin from /dev/null and output appended to the server's log so
# it holds none of the caller's file descriptors. In a non-interactive script the background
# subshell is not a process-group leader, so setsid/nohup/chroot/setpriv all exec in place
# and $! is the server's own pid.
launch() {
  local name=$1 dir=$SVC/$1
  shift
  (cd "$dir" && exec setsid nohup "$@" </dev/null >>"$dir/log" 2>&1) &
  echo "$!" >"$dir/pid"
}

# Print why server $1 failed and the end of its log; remember the failure for `up`'s exit code.
fail() {
  local name=$1
  shift
  log "FAILED: $name (port ${PORT[$name]}): $*"
  local f
  for f in "$SVC/$name/log" "$SVC/$name/build.log"; do
    if [[ -s $f ]]; then
      echo "----- last 30 lines of $f -----" >&2
      tail -n 30 "$f" >&2
      echo "-----" >&2
    fi
  done
  FAILED+=("$name")
}

# ---------------------------------------------------------------------------------------------
# Readiness probes: each asks the server something real over TCP.
# ---------------------------------------------------------------------------------------------

mysql_in_chroot() { chroot "$ROOTFS" /usr/bin/mysql --no-defaults "$@"; }

# A MongoDB `ping` command as an OP_MSG, in plain python (no driver needed).
# shellcheck disable=SC2016  # python source: its "$db" is a BSON key, not a shell variable
MONGO_PING_PY='
import socket, struct, sys
def bson(pairs):
    body = b""
    for k, v in pairs:
        if isinstance(v, int):
            body += b"\x10" + k.encode() + b"\0" + struct.pack("<i", v)
        else:
            s = v.encode() + b"\0"
            body += b"\x02" + k.encode() + b"\0" + struct.pack("<i", len(s)) + s
    return struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + bson([("ping", 1), ("$db", "admin")])
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg)
buf = b""
while len(buf) < 4 or len(buf) < struct.unpack("<i", buf[:4])[0]:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit(1)
    buf += chunk
ok = (b"\x01ok\0" + struct.pack("<d", 1.0) in buf) or (b"\x10ok\0" + struct.pack("<i", 1) in buf)
sys.exit(0 if ok else 1)
'

probe() {
  local name=$1 port=${PORT[$1]}
  case $name in
    mariadb*)
      mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -uroot \
        --connect-timeout=2 ping >/dev/null 2>&1 ;;
    mysql)
      # root over TCP, exactly as the tests connect (the client picks TLS by itself).
      mysql_in_chroot --protocol=tcp -h127.0.0.1 -P"$port" -uroot --connect-timeout=2 \
        -e 'SELECT 1' >/dev/null 2>&1 ;;
    redis)
      [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] ;;
    postgres)
      "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 ;;
    mongo)
      /usr/bin/python3 -c "$MONGO_PING_PY" "$port" 2>/dev/null ;;
    opensearch)
      curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/_cluster/health" 2>/dev/null ;;
  esac
}

# Wait until server $1 answers its probe, at most $2 seconds. Gives up early when the process
# we launched has exited (a crash at start-up should not cost a whole timeout).
wait_ready() {
  local name=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    probe "$name" && return 0
    if ! live_pid "$name" >/dev/null; then
      sleep 0.3   # the server may have just replaced its pid file; look once more
      live_pid "$name" >/dev/null || { probe "$name" && return 0; fail "$name" "process exited during start-up"; return 1; }
    fi
    sleep 0.2
  done
  fail "$name" "not ready after $2 s"
  return 1
}

# ---------------------------------------------------------------------------------------------
# Installation (only what is missing, so `up` on a provisioned machine does no apt work)
# ---------------------------------------------------------------------------------------------

APT_PACKAGES=(
  mariadb-server mariadb-client         # mariadbd, mariadb-install-db, mariadb, mariadb-admin
  redis-server redis-tools              # redis-server, redis-cli
  postgresql-15 postgresql-client-15    # /usr/lib/postgresql/15/bin/{initdb,postgres,pg_isready}
  mmdebstrap                            # builds the sid chroot for MySQL 9
  python3 python3-venv                  # venv for SecantusDB and osmem-server
  curl ca-certificates util-linux       # readiness probe; pip's TLS; setsid/setpriv/flock/mount
)

ensure_apt_packages() {
  local missing=() pkg
  local installed
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null || true)
  for pkg in "${APT_PACKAGES[@]}"; do
    grep -qx "$pkg install ok installed" <<<"$installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing with apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Debian mirror this machine's apt uses, read at run time (a registry host must never be
# written into the repository): the URI of the `deb` entry for the machine's own suite in
# /etc/apt/sources.list.d/*.sources (deb822), else in the one-line-style lists.
debian_mirror() {
  if [[ -n ${STRATA_DEBIAN_MIRROR:-} ]]; then echo "$STRATA_DEBIAN_MIRROR"; return; fi
  local suite uri
  # shellcheck source=/dev/null
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  shopt -s nullglob
  local sources=(/etc/apt/sources.list.d/*.sources) lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  shopt -u nullglob
  if ((${#sources[@]})); then
    uri=$(awk -v suite="$suite" '
      function flush() {
        if (deb && has_suite && enabled && uri != "") { print uri; found = 1; exit }
        deb = 0; has_suite = 0; enabled = 1; uri = ""
      }
      BEGIN { enabled = 1 }
      FNR == 1 { flush() }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"   { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:"    { uri = $2 }
      tolower($1) == "suites:"  { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
      tolower($1) == "enabled:" { if (tolower($2) == "no") enabled = 0 }
      END { if (!found) flush() }' "${sources[@]}")
  fi
  if [[ -z ${uri:-} ]] && ((${#lists[@]})); then
    uri=$(awk -v suite="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "${lists[@]}" 2>/dev/null)
  fi
  [[ -n ${uri:-} ]] || die "cannot find the Debian mirror in /etc/apt (set STRATA_DEBIAN_MIRROR)"
  echo "$uri"
}

# rm -rf for a chroot that may be half-built: an interrupted mmdebstrap can leave /proc, /sys
# or /dev mounted inside, and deleting through those mounts would be a disaster.
remove_tree() {
  local dir=$1 mnt
  [[ -e $dir ]] || return 0
  awk -v p="$dir/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount -l "$mnt" || true
  done
  rm -rf --one-file-system "$dir"
}

# Build the sid chroot with MySQL 9 once per machine (the slow step, ~60 s, ~500 MB).
# Built in a temporary dir and renamed when complete, so a half-built chroot is never used;
# a lock makes concurrent `up`s from two checkouts build it only once.
build_mysql_chroot() {
  [[ -x $ROOTFS/usr/sbin/mysqld ]] && return 0
  mkdir -p "$CACHE"
  exec 9>"$CACHE/mysql-sid-root.lock"
  flock 9
  [[ -x $ROOTFS/usr/sbin/mysqld ]] && return 0
  local mirror tmp=$ROOTFS.partial
  mirror=$(debian_mirror)
  log "building the MySQL 9 sid chroot in $ROOTFS from $mirror (once per machine, ~1-2 min)"
  remove_tree "$tmp"
  remove_tree "$ROOTFS"
  # Check-Valid-Until: the mirror's sid index can be older than this machine's clock.
  mmdebstrap --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
    --include=mysql-server-core,mysql-client-core sid "$tmp" "$mirror"
  [[ -x $tmp/usr/sbin/mysqld ]] || { log "mmdebstrap finished but $tmp has no mysqld"; return 1; }
  mv "$tmp" "$ROOTFS"
}

# Python venv with SecantusDB and osmem-server, shared by all checkouts. A marker file
# records what was installed, so an interrupted install or a changed PIP_REQS is redone.
ensure_venv() {
  local want="${PIP_REQS[*]}"
  [[ -f $VENV/.strata-installed && $(<"$VENV/.strata-installed") == "$want" ]] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/venv.lock"
  flock 8
  [[ -f $VENV/.strata-installed && $(<"$VENV/.strata-installed") == "$want" ]] && return 0
  log "installing ${PIP_REQS[*]} into $VENV"
  [[ -x $VENV/bin/pip ]] || { rm -rf "$VENV"; /usr/bin/python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --pre "${PIP_REQS[@]}"
  echo "$want" >"$VENV/.strata-installed"
}

# ---------------------------------------------------------------------------------------------
# Starting each server (each start_* launches and returns; `up` then waits on its probe)
# ---------------------------------------------------------------------------------------------

start_mariadb_instance() {
  local name=$1 dir=$SVC/$1 binlog
  read -ra binlog <<<"${MARIADB_BINLOG[$name]}"
  if [[ ! -d $dir/data ]]; then
    # Initialize into a temporary dir and rename, so an interrupted init is redone cleanly.
    rm -rf "$dir/data.init"
    if ! mariadb-install-db --no-defaults --user=root --datadir="$dir/data.init" \
      --auth-root-authentication-method=normal --skip-test-db >>"$dir/log" 2>&1; then
      fail "$name" "mariadb-install-db failed"
      return 1
    fi
    mv "$dir/data.init" "$dir/data"
  fi
  # No --log-error: the server then logs to stderr, i.e. to .services/<name>/log.
  # --pid-file is our own pid file: mariadbd rewrites it with the same pid.
  launch "$name" mariadbd --no-defaults --user=root --datadir="$dir/data" \
    --port="${PORT[$name]}" --bind-address=127.0.0.1 --socket="$(sock_dir "$name")/mysqld.sock" \
    --pid-file="$dir/pid" --skip-name-resolve --max-connections=500 --server-id=1 "${binlog[@]}"
}

# Unix sockets have a ~107-byte path limit: a deep checkout gets its sockets in /tmp instead.
sock_dir() {
  local d=$SVC/$1
  if ((${#SVC} > 60)); then
    d=/tmp/strata-$REPO_HASH/$1
    mkdir -p "$d"
  fi
  echo "$d"
}

start_redis() {
  launch redis redis-server --port "${PORT[redis]}" --bind 127.0.0.1 --dir "$SVC/redis" \
    --save '' --appendonly no --daemonize no
}

# PostgreSQL refuses to run as root: its data dir belongs to the postgres user, and it is
# started through setpriv (which execs, unlike su/runuser, so our pid is the postmaster's).
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# Where PostgreSQL's data and socket live: .services/postgres, unless the postgres user cannot
# reach it (a checkout under a private dir such as /root); then a dir in the machine cache,
# named after the checkout. Its log and pid file stay in .services/postgres either way.
pg_base() {
  if as_postgres test -x "$SVC/postgres"; then
    echo "$SVC/postgres"
  else
    echo "$CACHE/postgres-$REPO_HASH"
  fi
}

start_postgres() {
  chown postgres:postgres "$SVC/postgres"
  local base
  base=$(pg_base)
  mkdir -p "$base"
  chown postgres:postgres "$base"
  if [[ ! -d $base/data ]]; then
    rm -rf "$base/data.init"
    if ! (cd "$base" && as_postgres "$PG_BIN/initdb" -D "$base/data.init" -U postgres -A trust \
      --no-sync) >>"$SVC/postgres/log" 2>&1; then
      fail postgres "initdb failed"
      return 1
    fi
    mv "$base/data.init" "$base/data"
  fi
  local sock=$base
  if ((${#base} > 60)); then sock=$(sock_dir postgres); fi
  chown postgres:postgres "$sock"
  launch postgres setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PG_BIN/postgres" -D "$base/data" -p "${PORT[postgres]}" -k "$sock" \
    -c listen_addresses=127.0.0.1 -c fsync=off
}

start_mongo() {
  mkdir -p "$SVC/mongo/data"
  launch mongo env PYTHONUNBUFFERED=1 "$VENV/bin/secantusd-py" --host 127.0.0.1 \
    --port "${PORT[mongo]}" --storage-path "$SVC/mongo/data"
}

start_opensearch() {
  # The wheel bundles a static binary; run it directly (not through a Python wrapper) so the
  # pid we record is the server's. -no-stdin-watch: otherwise it exits when stdin closes.
  local bin
  bin=$("$VENV/bin/python" -c 'import osmem_server, os; print(os.path.dirname(osmem_server.__file__))')/bin/osmem-server
  launch opensearch "$bin" -addr "127.0.0.1:${PORT[opensearch]}" -no-stdin-watch
}

# MySQL's dir inside the chroot is a bind mount of .services/mysql.
mount_mysql_dir() {
  local inner=$ROOTFS$MYSQL_INNER
  mkdir -p "$inner"
  mountpoint -q "$inner" || mount --bind "$SVC/mysql" "$inner"
}

unmount_mysql_dir() {
  local inner=$ROOTFS$MYSQL_INNER
  if [[ -d $inner ]] && mountpoint -q "$inner"; then
    umount "$inner" || umount -l "$inner"
  fi
  if [[ -d $inner ]]; then rmdir "$inner" 2>/dev/null || true; fi
}

start_mysql() {
  local dir=$SVC/mysql
  mount_mysql_dir
  if [[ ! -d $dir/data ]]; then
    rm -rf "$dir/data.init"
    log "initializing MySQL 9 data dir"
    if ! chroot "$ROOTFS" /usr/sbin/mysqld --no-defaults --initialize-insecure --user=root \
      --datadir="$MYSQL_INNER/data.init" --innodb-redo-log-capacity=16M >>"$dir/log" 2>&1; then
      fail mysql "mysqld --initialize-insecure failed"
      return 1
    fi
    mv "$dir/data.init" "$dir/data"
  fi
  launch mysql chroot "$ROOTFS" /usr/sbin/mysqld --no-defaults --user=root \
    --datadir="$MYSQL_INNER/data" --port="${PORT[mysql]}" --bind-address=127.0.0.1 \
    --socket="$MYSQL_INNER/mysqld.sock" --pid-file="$MYSQL_INNER/pid" \
    --mysqlx=OFF --secure-file-priv= --max-connections=500 \
    --server-id=1 --log-bin=binlog --binlog-format=ROW --binlog-row-image=FULL \
    --binlog-row-metadata=FULL --gtid-mode=ON --enforce-gtid-consistency=ON \
    --performance-schema=OFF --innodb-buffer-pool-size=32M --innodb-redo-log-capacity=16M
}

# Test users (password `strata`), created after start-up; idempotent.
create_users() {
  local name=$1
  case $name in
    mariadb)
      mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"${PORT[mariadb]}" -uroot -e "
        CREATE USER IF NOT EXISTS 'strata'@'%' IDENTIFIED BY 'strata';
        GRANT ALL ON *.* TO 'strata'@'%';" ;;
    mysql)
      # initialize-insecure makes only root@localhost; root@'%' lets tests use
      # mysql://root@127.0.0.1:3308 whatever the server makes of the client's address.
      mysql_in_chroot --socket="$MYSQL_INNER/mysqld.sock" -uroot -e "
        CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED WITH caching_sha2_password BY '';
        GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
        CREATE USER IF NOT EXISTS 'strata'@'%' IDENTIFIED WITH caching_sha2_password BY 'strata';
        GRANT ALL ON *.* TO 'strata'@'%';"
      # One login over TLS puts strata's hash in the server's cache, so clients without TLS
      # and without RSA key exchange can log in too (until the server restarts).
      mysql_in_chroot --protocol=tcp -h127.0.0.1 -P"${PORT[mysql]}" -ustrata -pstrata \
        --ssl-mode=REQUIRED -e 'SELECT 1' >/dev/null 2>&1 ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

cmd_up() {
  local name
  local all=1
  for name in "${SERVERS[@]}"; do is_up "$name" || { all=0; break; }; done
  if ((all)); then
    log "all ${#SERVERS[@]} servers already up"
    return 0
  fi

  [[ $EUID -eq 0 ]] || die "must run as root (installs packages, builds a chroot, mounts)"
  ensure_apt_packages

  mkdir -p "$SVC"
  for name in "${SERVERS[@]}"; do mkdir -p "$SVC/$name"; done

  # Decide per server: already ours and up, taken by someone else, or to be started.
  local -A todo=()
  for name in "${SERVERS[@]}"; do
    if is_up "$name"; then
      continue
    elif port_open "${PORT[$name]}"; then
      # Another checkout's (or someone's) server holds the port. If it is the right kind of
      # server, use it rather than fail: e.g. a CI clone on a machine whose developer
      # checkout left its servers running.
      if probe "$name"; then
        log "$name: port ${PORT[$name]} is served by a process this checkout did not start; using it"
      else
        fail "$name" "port ${PORT[$name]} is in use by something that is not a $name server"
      fi
    else
      todo[$name]=1
    fi
  done

  # The two slow preparations run in the background while the quick servers start.
  local chroot_job="" venv_job=""
  if [[ -n ${todo[mysql]:-} ]]; then
    [[ -x $ROOTFS/usr/sbin/mysqld ]] ||
      log "building the MySQL 9 sid chroot in the background (log: $SVC/mysql/build.log)"
    (build_mysql_chroot) >>"$SVC/mysql/build.log" 2>&1 &
    chroot_job=$!
  fi
  if [[ -n ${todo[mongo]:-}${todo[opensearch]:-} ]]; then
    (ensure_venv) >>"$SVC/mongo/build.log" 2>&1 &
    venv_job=$!
  fi

  local quick=()
  for name in mariadb mariadb-stmt mariadb-nobinlog mariadb-scratch redis postgres; do
    [[ -n ${todo[$name]:-} ]] || continue
    case $name in
      mariadb*) start_mariadb_instance "$name" ;;
      *) "start_$name" ;;
    esac && quick+=("$name")
  done
  for name in "${quick[@]}"; do
    wait_ready "$name" "$READY_TIMEOUT" && log "$name up on 127.0.0.1:${PORT[$name]}"
  done
  if [[ -n ${todo[mariadb]:-} ]] && is_up mariadb; then
    create_users mariadb || fail mariadb "could not create the strata user"
  fi

  if [[ -n $venv_job ]]; then
    if wait "$venv_job"; then
      for name in mongo opensearch; do
        [[ -n ${todo[$name]:-} ]] || continue
        "start_$name"
      done
      for name in mongo opensearch; do
        [[ -n ${todo[$name]:-} ]] || continue
        wait_ready "$name" "$READY_TIMEOUT" && log "$name up on 127.0.0.1:${PORT[$name]}"
      done
    else
      cp "$SVC/mongo/build.log" "$SVC/opensearch/build.log"
      [[ -n ${todo[mongo]:-} ]] && fail mongo "installing the Python venv failed"
      [[ -n ${todo[opensearch]:-} ]] && fail opensearch "installing the Python venv failed"
    fi
  fi

  if [[ -n $chroot_job ]]; then
    if ! wait "$chroot_job"; then
      fail mysql "building the sid chroot failed (see $SVC/mysql/build.log)"
    elif start_mysql && wait_ready mysql "$MYSQL_READY_TIMEOUT"; then
      log "mysql up on 127.0.0.1:${PORT[mysql]} ($(chroot "$ROOTFS" /usr/sbin/mysqld --version | sed 's/.*Ver //'))"
      create_users mysql || fail mysql "could not create the strata user"
    fi
  fi

  if ((${#FAILED[@]})); then
    log "these servers did not come up: ${FAILED[*]}"
    exit 1
  fi
  log "all ${#SERVERS[@]} servers up (eval \"\$(scripts/services.sh env)\" for their URLs)"
}

# Stop only what this checkout started (pid files), wait for the processes to exit.
cmd_down() {
  local purge=0
  case ${1:-} in
    --purge) purge=1 ;;
    "") ;;
    *) die "usage: services.sh down [--purge]" ;;
  esac
  local name pid
  local -A pids=()
  for name in "${SERVERS[@]}"; do
    pid=$(live_pid "$name") || continue
    # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for clients to leave) and
    # makes SecantusDB close its storage cleanly; the others shut down cleanly on SIGTERM.
    case $name in
      postgres | mongo) kill -INT "$pid" ;;
      *) kill -TERM "$pid" ;;
    esac
    pids[$name]=$pid
  done
  local deadline=$((SECONDS + 60))
  for name in "${SERVERS[@]}"; do
    pid=${pids[$name]:-}
    [[ -n $pid ]] || continue
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) did not stop within 60 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name"
  done
  for name in "${SERVERS[@]}"; do rm -f "$SVC/$name/pid"; done
  unmount_mysql_dir
  if ((purge)); then
    rm -rf --one-file-system "$SVC" "/tmp/strata-$REPO_HASH" "$CACHE/postgres-$REPO_HASH"
    log "deleted $SVC"
  fi
}

cmd_status() {
  local name state
  for name in "${SERVERS[@]}"; do
    if is_up "$name"; then
      state=up
    elif port_open "${PORT[$name]}"; then
      state="up (not started by this checkout)"
    else
      state=down
    fi
    printf '%-18s %-6s %s\n' "$name" "${PORT[$name]}" "$state"
  done
}

cmd_env() {
  cat <<EOF
export STRATA_TEST_MARIADB_URL=mysql://root@127.0.0.1:${PORT[mariadb]}
export STRATA_TEST_MARIADB_USER_URL=mysql://strata:strata@127.0.0.1:${PORT[mariadb]}
export STRATA_TEST_MYSQL_URL=mysql://root@127.0.0.1:${PORT[mysql]}
export STRATA_TEST_MYSQL_USER_URL=mysql://strata:strata@127.0.0.1:${PORT[mysql]}
export STRATA_TEST_MARIADB_STMT_URL=mysql://root@127.0.0.1:${PORT[mariadb-stmt]}
export STRATA_TEST_MARIADB_NOBINLOG_URL=mysql://root@127.0.0.1:${PORT[mariadb-nobinlog]}
export STRATA_TEST_MARIADB_SCRATCH_URL=mysql://root@127.0.0.1:${PORT[mariadb-scratch]}
export STRATA_TEST_REDIS_URL=redis://127.0.0.1:${PORT[redis]}
export STRATA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:${PORT[postgres]}/postgres
export STRATA_TEST_MONGO_URL=mongodb://127.0.0.1:${PORT[mongo]}
export STRATA_TEST_OPENSEARCH_URL=http://127.0.0.1:${PORT[opensearch]}
EOF
}

case ${1:-} in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 up | down [--purge] | status | env" >&2
    exit 2 ;;
esac
