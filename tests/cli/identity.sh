#!/usr/bin/env bash
# Acceptance of the identity service through the unmodified openstack CLI,
# with TLS on, on SQLite and on PostgreSQL, across a restart.
. "$(dirname "$0")/lib.bash"
trap ferro_stop EXIT

as_u1() {
    env OS_USERNAME=u1 OS_PASSWORD=pw OS_USER_DOMAIN_NAME=d1 OS_PROJECT_NAME=p1 OS_PROJECT_DOMAIN_NAME=d1 "$@"
}

run_on() {
    local label=$1 state=$2; shift 2
    log "--- $label"
    ferro_start "$state" --tls "$@" || { FAILS=$((FAILS + 1)); return; }
    # shellcheck disable=SC1091
    . "$state/openrc"
    check_eq "$label: openrc uses https" "https" "$OS_AUTH_PROTOCOL"
    check "$label: token issue" openstack token issue
    check "$label: the start says how to use clouds.yaml from anywhere" \
        grep -q "export OS_CLIENT_CONFIG_FILE=$state/clouds.yaml" "$state.log"
    check "$label: --os-cloud from another directory, with no OS_* variables" \
        bash -c "cd / && env -i PATH='$PATH' HOME='$FERRO_WORK' OS_CLIENT_CONFIG_FILE='$state/clouds.yaml' openstack --os-cloud ferrostack token issue"
    check "$label: service list shows identity" bash -c "openstack service list -f value -c Type | grep -x identity"
    check "$label: endpoint list has 3 identity endpoints" bash -c "[ \$(openstack endpoint list --service identity -f value -c ID | wc -l) -eq 3 ]"
    check "$label: catalog list" bash -c "openstack catalog list -f value | grep -q keystone"
    check "$label: domain create d1" openstack domain create d1
    check "$label: project create p1" openstack project create --domain d1 p1
    check "$label: user create u1" openstack user create --domain d1 --password pw u1
    check "$label: role add member" openstack role add --project p1 --user-domain d1 --project-domain d1 --user u1 member
    local p1
    p1=$(openstack project show --domain d1 p1 -f value -c id)
    check_eq "$label: u1's token is scoped to p1" "$p1" "$(as_u1 openstack token issue -f value -c project_id 2>&1)"
    check_fails "$label: u1 can't list users" "403" as_u1 openstack user list
    check_fails "$label: u1 can't create projects" "403" as_u1 openstack project create px
    check_eq "$label: u1 sees only p1" "p1" "$(as_u1 openstack project list -f value -c Name 2>&1)"

    local ac id secret
    ac=$(as_u1 openstack application credential create ac1 -f value -c id -c secret 2>&1)
    id=$(printf '%s\n' "$ac" | sed -n 1p)
    secret=$(printf '%s\n' "$ac" | sed -n 2p)
    check "$label: authenticate with application credential ac1" \
        env -u OS_USERNAME -u OS_PASSWORD -u OS_USER_DOMAIN_NAME -u OS_PROJECT_NAME -u OS_PROJECT_DOMAIN_NAME \
        OS_AUTH_TYPE=v3applicationcredential OS_APPLICATION_CREDENTIAL_ID="$id" OS_APPLICATION_CREDENTIAL_SECRET="$secret" \
        openstack token issue

    local tok
    tok=$(openstack token issue -f value -c id)
    check "$label: a fresh token works" curl -sf --cacert "$OS_CACERT" -H "X-Auth-Token: $tok" "$OS_AUTH_URL/users" -o /dev/null
    check "$label: token revoke" openstack token revoke "$tok"
    check_eq "$label: the revoked token is refused at once" "401" \
        "$(curl -s --cacert "$OS_CACERT" -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $tok" "$OS_AUTH_URL/users")"

    check "$label: user set --disable" openstack user set --domain d1 --disable u1
    check_fails "$label: a disabled user can't authenticate" "401" as_u1 openstack token issue

    ferro_stop
    ferro_start "$state" --tls "$@" || { FAILS=$((FAILS + 1)); return; }
    . "$state/openrc"
    check "$label: after restart, admin token issue" openstack token issue
    check_eq "$label: after restart, p1 is still there" "$p1" "$(openstack project show --domain d1 p1 -f value -c id 2>&1)"
    check_fails "$label: after restart, u1 is still disabled" "401" as_u1 openstack token issue
    check "$label: user set --enable" openstack user set --domain d1 --enable u1
    check_eq "$label: after restart, u1 works again" "$p1" "$(as_u1 openstack token issue -f value -c project_id 2>&1)"
    ferro_stop
}

run_on sqlite "$FERRO_WORK/cli-sqlite"
if [ -n "${FERRO_TEST_POSTGRES_URL:-}" ]; then
    db="ferro_cli_$$"
    psql -q "$FERRO_TEST_POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
    run_on postgres "$FERRO_WORK/cli-postgres" --database-url "${FERRO_TEST_POSTGRES_URL%/*}/$db"
fi
finish
