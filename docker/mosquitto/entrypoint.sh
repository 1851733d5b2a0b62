#!/bin/sh
# Start Mosquitto with a login per client and ACLs from the environment (no secret in the image):
#   MQTT_BRIDGES="park-1:PASSWORD,north-village:PASSWORD"           one bridge per site
#   MQTT_LOCKS="park-1/flat-101:PASSWORD,park-1/gate-in:PASSWORD"    optional: one login per lock
#   MQTT_BRIDGE_TOPICS="park-1:nuki/3A4B5C/#,park-1:cmnd/gate-relay/#,park-1:stat/gate-relay/#,park-1:tele/gate-relay/#"  optional: a bridge's
#       devices with topics of their own (profiles nuki and tasmota)
# A bridge logs in as bridge-<site> and may read and write acs/v1/<site>/# only. A lock logs in as
# lock-<site>-<door>: it publishes its door's state, scan, ack and availability and reads its
# commands and events, so only the bridge can publish a command (docs/bridge.md, "MQTT").
set -eu

CONFIG="${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}"
RUN_DIR="${MOSQUITTO_RUN_DIR:-/mosquitto/run}"
NAME='^[a-z0-9][a-z0-9-]*$'

fail() { echo "mosquitto entrypoint: $*" >&2; exit 2; }

: "${MQTT_BRIDGES:?set MQTT_BRIDGES to site:password[,site:password...]: one login per site bridge}"
mkdir -p "$RUN_DIR"
umask 077
: > "$RUN_DIR/passwd"
: > "$RUN_DIR/acl"

add_user() {  # user password
  [ -n "$2" ] || fail "empty password for $1"
  mosquitto_passwd -b "$RUN_DIR/passwd" "$1" "$2" >/dev/null
}

old_ifs=$IFS
IFS=,
for entry in $MQTT_BRIDGES; do
  site=${entry%%:*}
  if ! echo "$site" | grep -Eq "$NAME"; then fail "MQTT_BRIDGES: '$site' is not a site topic segment (a-z, 0-9, -)"; fi
  add_user "bridge-$site" "${entry#*:}"
  printf 'user bridge-%s\ntopic readwrite acs/v1/%s/#\n' "$site" "$site" >> "$RUN_DIR/acl"
  for extra in ${MQTT_BRIDGE_TOPICS:-}; do
    if [ "${extra%%:*}" = "$site" ]; then printf 'topic readwrite %s\n' "${extra#*:}" >> "$RUN_DIR/acl"; fi
  done
  echo >> "$RUN_DIR/acl"
done
for entry in ${MQTT_LOCKS:-}; do
  door_path=${entry%%:*}
  site=${door_path%%/*}
  door=${door_path#*/}
  if ! echo "$site" | grep -Eq "$NAME" || ! echo "$door" | grep -Eq "$NAME"; then fail "MQTT_LOCKS: '$door_path' is not site/door"; fi
  add_user "lock-$site-$door" "${entry#*:}"
  base="acs/v1/$site/$door"
  printf 'user lock-%s-%s\ntopic write %s/state\ntopic write %s/scan\ntopic write %s/ack\ntopic readwrite %s/availability\ntopic read %s/cmd\ntopic read %s/event\n\n' \
    "$site" "$door" "$base" "$base" "$base" "$base" "$base" "$base" >> "$RUN_DIR/acl"
done
IFS=$old_ifs
# The image's mosquitto drops root for its own user, which must still read these files.
if id mosquitto >/dev/null 2>&1; then chown mosquitto "$RUN_DIR" "$RUN_DIR/passwd" "$RUN_DIR/acl"; fi

exec mosquitto -c "$CONFIG"
