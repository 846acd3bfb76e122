#!/usr/bin/env bash
# PostgreSQL's server binaries for the tests (tests/postgres.py runs its own throwaway server
# from them). Called by `make test`. Idempotent: does nothing when initdb and postgres are
# already there. Installs Debian's `postgresql` with apt-get as root, without creating or
# starting the system's own cluster. Never fails the build: when it cannot install it says why
# and exits 0, and the PostgreSQL tests skip, with the reason.
set -u

have_binaries() {
    local dir
    if [ -n "${TRAINLAB_PG_BINDIR:-}" ] && [ -x "$TRAINLAB_PG_BINDIR/initdb" ] \
        && [ -x "$TRAINLAB_PG_BINDIR/postgres" ]; then
        return 0
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
            return 0
        fi
    done
    command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1
}

skip() {
    echo "install-postgres: $1; the PostgreSQL tests will skip" >&2
    exit 0
}

have_binaries && exit 0
[ "$(id -u)" = 0 ] || skip "not root, cannot apt-get install postgresql"
command -v apt-get >/dev/null 2>&1 || skip "no apt-get (not Debian/Ubuntu): install PostgreSQL"

# the package would create (and may start) a system cluster; the tests need none
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/trainlab-tests.conf

echo "install-postgres: apt-get install postgresql (server binaries for the tests)" >&2
log=$(mktemp)
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends postgresql; } >"$log" 2>&1; then
    tail -n 5 "$log" >&2
    rm -f "$log"
    skip "apt-get install postgresql failed"
fi
rm -f "$log"
have_binaries || skip "postgresql installed but initdb/postgres not found"
echo "install-postgres: done" >&2
