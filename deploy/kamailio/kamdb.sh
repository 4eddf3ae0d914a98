#!/bin/sh
# The proxy's SQLite database: subscribers (digest credentials, auth_db) and registrations
# (usrloc).  Passwords are read from stdin, never from the command line, and only their
# digest HA1 (MD5 of user:realm:password, RFC 2617) is stored.
#
#   kamdb.sh init DBFILE                  create the tables (Debian's own schema files)
#   kamdb.sh add DBFILE USER REALM        add or replace USER; the password on stdin
#   kamdb.sh remove DBFILE USER
#   kamdb.sh list DBFILE                  subscribers and current registrations
#
# REALM is the proxy's SIP_DOMAIN.  Needs sqlite3 and kamailio-sqlite-modules (for the
# schema files in /usr/share/kamailio/db_sqlite).
set -eu

SCHEMA_DIR=${KAMAILIO_SCHEMA_DIR:-/usr/share/kamailio/db_sqlite}

die() { echo "kamdb.sh: $*" >&2; exit 2; }
need_db() { [ -f "$1" ] || die "$1: no such database (run: kamdb.sh init $1)"; }
valid_name() {
	case "$1" in
		''|*[!A-Za-z0-9._-]*) die "$2 must be letters, digits, '.', '_' or '-': got '$1'" ;;
	esac
}

command -v sqlite3 >/dev/null || die "sqlite3 not found (apt-get install sqlite3)"
[ $# -ge 2 ] || die "usage: kamdb.sh init|add|remove|list DBFILE [USER REALM]"
cmd=$1 db=$2

case "$cmd" in
init)
	[ -e "$db" ] && die "$db exists already"
	for f in standard auth_db usrloc; do
		[ -f "$SCHEMA_DIR/$f-create.sql" ] ||
			die "$SCHEMA_DIR/$f-create.sql missing (apt-get install kamailio-sqlite-modules)"
	done
	umask 077
	{
		echo "PRAGMA journal_mode=WAL;"
		cat "$SCHEMA_DIR/standard-create.sql" "$SCHEMA_DIR/auth_db-create.sql" \
			"$SCHEMA_DIR/usrloc-create.sql"
	} | sqlite3 "$db" >/dev/null
	echo "created $db"
	;;
add)
	[ $# -eq 4 ] || die "usage: kamdb.sh add DBFILE USER REALM (password on stdin)"
	need_db "$db"
	user=$3 realm=$4
	valid_name "$user" USER
	valid_name "$realm" REALM
	if [ -t 0 ]; then
		printf 'password for %s: ' "$user" >&2
		stty -echo
		IFS= read -r password || true
		stty echo
		echo >&2
	else
		IFS= read -r password || true
	fi
	[ -n "$password" ] || die "empty password"
	ha1=$(printf '%s:%s:%s' "$user" "$realm" "$password" | md5sum | cut -d' ' -f1)
	ha1b=$(printf '%s@%s:%s:%s' "$user" "$realm" "$realm" "$password" | md5sum | cut -d' ' -f1)
	sqlite3 "$db" "INSERT INTO subscriber (username, domain, password, ha1, ha1b)
		VALUES ('$user', '$realm', '', '$ha1', '$ha1b')
		ON CONFLICT (username, domain) DO UPDATE SET ha1 = excluded.ha1, ha1b = excluded.ha1b;"
	echo "subscriber $user@$realm saved"
	;;
remove)
	[ $# -eq 3 ] || die "usage: kamdb.sh remove DBFILE USER"
	need_db "$db"
	valid_name "$3" USER
	sqlite3 "$db" "DELETE FROM subscriber WHERE username = '$3';"
	;;
list)
	need_db "$db"
	echo "subscribers:"
	sqlite3 "$db" "SELECT '  ' || username || '@' || domain FROM subscriber ORDER BY username;"
	echo "registrations (as last written by Kamailio; live ones: kamcmd ul.dump):"
	sqlite3 "$db" "SELECT '  ' || username || ' ' || contact || ' expires ' || expires
		FROM location ORDER BY username;"
	;;
*)
	die "unknown command '$cmd': want init, add, remove or list"
	;;
esac
