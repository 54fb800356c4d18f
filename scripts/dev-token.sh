#!/bin/sh
# Prints a development token (JWT, EdDSA) signed with the key scripts/dev-auth.sh made.
#   scripts/dev-token.sh SUB [options]
#     --ttl SECONDS      lifetime (default 3600)
#     --name NAME        the presence name (the `name` claim)
#     --grant ROOM=ACTS  grants ACTS (comma-separated: subscribe,publish,history,presence)
#                        in ROOM (a name, or a prefix ending in '*'); repeatable
#     --admin            a backend's token (roomgate.admin)
#     --key FILE         the signing key (default certs/dev-jwt.key)
# Only openssl and sh: the same steps make a token in any language (docs/OPERATIONS.md).
set -eu
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
sub=$1
shift
ttl=3600 name= grants= admin= key=certs/dev-jwt.key
while [ $# -gt 0 ]; do
	case $1 in
	--ttl) ttl=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	--grant)
		room=${2%%=*} acts=${2#*=}
		[ "$room" != "$2" ] || usage
		list=$(printf '%s' "$acts" | sed 's/[^,][^,]*/"&"/g')
		grants="${grants:+$grants,}\"$room\":[$list]"
		shift 2 ;;
	--admin) admin=1; shift ;;
	--key) key=$2; shift 2 ;;
	*) usage ;;
	esac
done
[ -r "$key" ] || { echo "dev-token: no key $key: run scripts/dev-auth.sh first" >&2; exit 1; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
rg=
[ -n "$admin" ] && rg="\"admin\":true"
[ -n "$grants" ] && rg="${rg:+$rg,}\"rooms\":{$grants}"
payload="{\"sub\":\"$sub\",\"iat\":$now,\"exp\":$((now + ttl))"
[ -n "$name" ] && payload="$payload,\"name\":\"$name\""
[ -n "$rg" ] && payload="$payload,\"roomgate\":{$rg}"
payload="$payload}"
h=$(printf '{"alg":"EdDSA","typ":"JWT","kid":"dev"}' | b64url)
p=$(printf '%s' "$payload" | b64url)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
printf '%s.%s' "$h" "$p" >"$tmp"
s=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$tmp" | b64url)
printf '%s.%s.%s\n' "$h" "$p" "$s"
