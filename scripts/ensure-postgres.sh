#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is up (127.0.0.1:5432, trust auth,
# database "test"). Starts the machine's cluster when it is down; fails loudly otherwise.
set -euo pipefail
url_host=127.0.0.1
url_port=5432
up() { (exec 3<>"/dev/tcp/$url_host/$url_port") 2>/dev/null; }
if up; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL is down; starting the local cluster" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do up && exit 0; sleep 1; done
fi
echo "PostgreSQL is not reachable on $url_host:$url_port. Start it, e.g.:" >&2
echo "  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
echo "or point LOUDOU_TEST_PG_URL at a server with trust auth and a database 'test'." >&2
exit 1
