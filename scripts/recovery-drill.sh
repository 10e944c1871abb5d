#!/usr/bin/env bash
# The recovery runbook of docs/operations.md, run as a drill: back up a ledger,
# restore the backup somewhere else, prove the restored log intact while rebuilding every
# read model from it, prove them equal to a replay, and time each step.
#
#   scripts/recovery-drill.sh --source URL --target URL --work DIR [--ledger BIN]
#
# SOURCE is the ledger to back up (left untouched; it must not be written to during
# the drill, so that its head hash before the backup is the head the restore must
# show). TARGET is where the backup is restored: a SQLite file that does not exist
# yet, or an existing, empty PostgreSQL database (the URL may pick the schema with
# `?options=-c%20search_path%3Dname`, as for the ledger; the schema is restored
# under the same name). DIR holds the backup file. BIN is the ledger binary
# (`ledger` on PATH by default).
#
# The last line says `recovery drill passed: …` with the head hash and the seconds of
# each step; any failure exits non-zero with a sentence saying which step failed.
# CI runs this on a log of about 100,000 events (tests/recovery.rs); run it with a release
# build on a copy of a large log to measure the recovery time.
set -euo pipefail

ledger=ledger
source_url=""
target_url=""
work=""
while [ $# -gt 0 ]; do
    case "$1" in
        --source) source_url="$2"; shift 2 ;;
        --target) target_url="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --ledger) ledger="$2"; shift 2 ;;
        *) echo "recovery drill: unknown argument $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
if [ -z "$source_url" ] || [ -z "$target_url" ] || [ -z "$work" ]; then
    echo "recovery drill: --source, --target and --work are required (see the top of $0)" >&2
    exit 2
fi
mkdir -p "$work"

fail() {
    echo "recovery drill FAILED at $1" >&2
    exit 1
}

now() { date +%s.%N; }
seconds_since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

# Runs `ledger verify --json` on URL into $report; ends the drill if verify does not pass.
verify() {
    local url="$1" step="$2"
    if ! report="$("$ledger" --db "$url" verify --json)"; then
        echo "$report" >&2
        fail "$step: ledger verify did not pass"
    fi
}
# The field NAME of the last verify report.
field() { python3 -c "import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])" "$1" <<<"$report"; }

sqlite_file() { echo "${1#sqlite://}" | sed 's/?.*//'; }
# The PostgreSQL URL without its query (pg_dump and pg_restore take the schema apart).
postgres_base() { echo "${1%%\?*}"; }
postgres_schema() { echo "$1" | sed -n 's/.*search_path%3D\([A-Za-z0-9_]*\).*/\1/p'; }

case "$source_url" in
    sqlite://*|postgres://*|postgresql://*) ;;
    *) fail "start: --source must be a sqlite:// or postgres:// URL" ;;
esac

# 0. The head the backup must hold: the source verified as it is now.
verify "$source_url" "the source"
source_head="$(field head_hash)"
source_events="$(field events)"
echo "source: $source_events events, head hash $source_head"

# 1. Back up: a consistent copy while the ledger may run (SQLite's online backup, pg_dump's
#    snapshot). Copying a SQLite file alone is not a backup: its -wal file holds recent commits.
started="$(now)"
case "$source_url" in
    sqlite://*)
        backup="$work/ledger.backup.db"
        rm -f "$backup"
        sqlite3 "$(sqlite_file "$source_url")" ".backup '$backup'" || fail "backup: sqlite3 .backup"
        ;;
    *)
        backup="$work/ledger.dump"
        schema="$(postgres_schema "$source_url")"
        pg_dump --format=custom --file="$backup" ${schema:+--schema="$schema"} "$(postgres_base "$source_url")" \
            || fail "backup: pg_dump"
        ;;
esac
backup_s="$(seconds_since "$started")"
echo "1. backup: $(du -h "$backup" | cut -f1) in $backup_s s"

# 2. Restore into the target.
started="$(now)"
case "$target_url" in
    sqlite://*)
        target_file="$(sqlite_file "$target_url")"
        [ -e "$target_file" ] && fail "restore: $target_file exists already; restore into a new file"
        cp "$backup" "$target_file" || fail "restore: copying the backup"
        ;;
    *)
        pg_restore --exit-on-error --no-owner --dbname="$(postgres_base "$target_url")" "$backup" \
            || fail "restore: pg_restore (the target database must exist and be empty)"
        ;;
esac
restore_s="$(seconds_since "$started")"
echo "2. restore: $restore_s s"

# 3 and 4 at once, one on each core: prove the restored log intact (the whole chain, every
#    replay and invariant, and the same head as the source) while every read model is
#    rebuilt from the first event (read models are never trusted from a backup). Nothing
#    serves before both have passed; if verify fails, the rebuilt read models go with the
#    restore.
started="$(now)"
"$ledger" --db "$target_url" projections rebuild >/dev/null 2>"$work/rebuild.err" &
rebuild_pid=$!
trap 'kill "$rebuild_pid" 2>/dev/null || true' EXIT
verify "$target_url" "verify of the restored log"
restored_head="$(field head_hash)"
[ "$restored_head" = "$source_head" ] \
    || fail "verify of the restored log: head hash $restored_head, the source has $source_head"
verify_s="$(seconds_since "$started")"
echo "3. verify: head hash $restored_head in $verify_s s"
wait "$rebuild_pid" || { cat "$work/rebuild.err" >&2; fail "rebuild: ledger projections rebuild"; }
trap - EXIT
rebuild_s="$(seconds_since "$started")"
echo "4. rebuild (beside verify, from the same start): $rebuild_s s"

# The ledger can serve again here. 5. Verify again, which may run while it serves: the read
#    models are caught up now, so every table is compared with the replay.
started="$(now)"
verify "$target_url" "verify after the rebuild"
[ "$(field projections_checked)" = "True" ] || fail "verify after the rebuild: the read models were not compared"
check_s="$(seconds_since "$started")"
echo "5. verify with read models: $check_s s"

total_s="$(python3 -c "import sys; print(f'{float(sys.argv[1]) + max(map(float, sys.argv[2:])):.2f}')" "$restore_s" "$verify_s" "$rebuild_s")"
echo "recovery drill passed: $source_events events, head hash $source_head; backup ${backup_s} s, restore ${restore_s} s, verify ${verify_s} s, rebuild ${rebuild_s} s, verify with read models ${check_s} s; restore to serving ${total_s} s"
