#!/bin/sh
# Authorises (AUTHORIZED=true) or deauthorises (false) one member at the network's controller and sets its
# managed address, through the documented controller APIs:
#   self-hosted controller: POST $URL/controller/network/$NETWORK_ID/member/$MEMBER_ID, header X-ZT1-Auth,
#     body {"authorized":..., "ipAssignments":[...]};
#   ZeroTier Central: POST $URL/api/v1/network/$NETWORK_ID/member/$MEMBER_ID, header
#     "Authorization: token ...", body {"config":{"authorized":..., "ipAssignments":[...]}}.
# The token is read from TOKEN_FILE and handed to curl on its standard input (--config -), so it never
# appears in a process list. Runs where the controller is reachable, never on the member.
# Built to ZeroTier's documentation; not run against a real ZeroTier controller.
set -eu
: "${CONTROLLER_TYPE:?}" "${CONTROLLER_URL:?}" "${TOKEN_FILE:?}" "${NETWORK_ID:?}" "${MEMBER_ID:?}" "${ADDRESS:?}"
AUTHORIZED=${AUTHORIZED:-true}
case "$AUTHORIZED" in true | false) ;; *) echo "AUTHORIZED must be true or false" >&2; exit 2 ;; esac
printf '%s' "$MEMBER_ID" | grep -Eq '^[0-9a-f]{10}$' || { echo "MEMBER_ID must be 10 hex digits" >&2; exit 2; }
token=$(tr -d '\r\n' <"$TOKEN_FILE")
base=${CONTROLLER_URL%/}
member="{\"authorized\":$AUTHORIZED,\"ipAssignments\":[\"$ADDRESS\"]}"
case "$CONTROLLER_TYPE" in
  selfHosted)
    url="$base/controller/network/$NETWORK_ID/member/$MEMBER_ID"
    header="X-ZT1-Auth: $token"
    body=$member
    ;;
  central)
    url="$base/api/v1/network/$NETWORK_ID/member/$MEMBER_ID"
    header="Authorization: token $token"
    body="{\"config\":$member}"
    ;;
  *) echo "CONTROLLER_TYPE must be selfHosted or central" >&2; exit 2 ;;
esac
printf 'header = "%s"\n' "$header" |
  curl --silent --show-error --fail --max-time 20 --config - \
    -X POST -H 'Content-Type: application/json' --data "$body" "$url" >/dev/null
echo "member $MEMBER_ID authorized=$AUTHORIZED on $NETWORK_ID"
