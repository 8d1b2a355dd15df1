#!/usr/bin/env bash
# Nova APIs beyond the server lifecycle, through the unmodified openstack
# CLI, on a cloud with the fake hypervisor (what is checked here is the API
# the client sees, not a guest): server properties, a server's security
# groups, server groups (anti-affinity refused on a one-host cloud),
# aggregates with a zone, hypervisor show and stats, usage list and show,
# server backups with rotation.
. "$(dirname "$0")/lib.bash"
trap ferro_stop EXIT

state="$FERRO_WORK/cli-compute-api"
scratch="$FERRO_WORK/compute-api-files"
rm -rf "$state" "$scratch"
mkdir -p "$scratch"
img=${FERRO_TINY_IMAGE:-}
if [ -z "$img" ]; then
    img="$scratch/small.qcow2"
    qemu-img create -q -f qcow2 "$img" 64M
fi
ferro_start "$state" --hypervisor fake || exit 1
. "$state/openrc"

status_is() { [ "$(openstack server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }

check "image create" openstack image create --public --container-format bare --disk-format qcow2 --file "$img" tiny
check "flavor create" openstack flavor create --vcpus 1 --ram 256 --disk 1 m1.tiny
check "server create --wait p1" openstack server create --image tiny --flavor m1.tiny --nic none --wait p1

# Properties (server metadata).
check "server set --property" openstack server set --property role=web --property tier=1 p1
check "server show lists the properties" bash -c \
    "openstack server show p1 -f json -c properties | grep -q '\"role\": \"web\"'"
check "server unset --property" openstack server unset --property tier p1
check_eq "only role is left" "{'role': 'web'}" \
    "$(openstack server show p1 -f value -c properties 2>&1 | sed "s/\"/'/g")"

# A server's security groups, as openstack.cloud.server reads them.
check_eq "os-security-groups of a server without ports" "[]" \
    "$(python3 - <<'EOF' 2>&1
import json
import openstack
conn = openstack.connect()  # the openrc's OS_* variables
srv = conn.compute.find_server("p1")
print(json.dumps(conn.compute.get(f"/servers/{srv.id}/os-security-groups").json()["security_groups"]))
EOF
)"

# Server groups: anti-affinity on one host takes one server only.
check "server group create --policy anti-affinity" openstack server group create --policy anti-affinity spread
gid=$(openstack server group show spread -f value -c id)
check "server create --hint group (first)" openstack server create --image tiny --flavor m1.tiny --nic none --hint group="$gid" --wait g1
check_fails "server create --hint group (second) ends in ERROR" "ERROR\|Error" \
    openstack server create --image tiny --flavor m1.tiny --nic none --hint group="$gid" --wait g2
check "the second's fault says No valid host" bash -c \
    "openstack server show g2 -f value -c fault | grep -q 'No valid host was found'"
check "server group show lists both members" bash -c \
    "openstack server group show spread -f value -c members | grep -q \"\$(openstack server show g1 -f value -c id)\""
check "server group list" bash -c "openstack server group list -f value -c Name | grep -qx spread"
check "server delete g2" openstack server delete --wait g2
check "server group delete" openstack server group delete spread

# Aggregates and zones.
host=$(openstack hypervisor list -f value -c "Hypervisor Hostname" | head -n1)
check "aggregate create --zone az1" openstack aggregate create --zone az1 rack1
check "aggregate add host" openstack aggregate add host rack1 "$host"
check "aggregate set --property" openstack aggregate set --property ssd=true rack1
check "aggregate show lists the host and properties" bash -c \
    "openstack aggregate show rack1 -f json | grep -q '\"$host\"' && openstack aggregate show rack1 -f json | grep -q ssd"
check_eq "availability zone list shows az1" "az1" \
    "$(openstack availability zone list --compute -f value -c 'Zone Name' 2>&1 | head -n1)"
check "server create --availability-zone az1" openstack server create --image tiny --flavor m1.tiny --nic none --availability-zone az1 --wait z1
check_eq "z1 is in az1" "az1" "$(openstack server show z1 -f value -c OS-EXT-AZ:availability_zone 2>&1)"
check "hypervisor show names the aggregate" bash -c \
    "openstack hypervisor show '$host' -f json | grep -q rack1"
check_fails "aggregate delete refuses a non-empty aggregate" "not empty" openstack aggregate delete rack1
check "aggregate remove host" openstack aggregate remove host rack1 "$host"
check "aggregate delete" openstack aggregate delete rack1

# Statistics and usage.
check_eq "hypervisor stats show counts the host" "1" \
    "$(openstack hypervisor stats show -f value -c count 2>/dev/null)"
check "hypervisor stats show counts the running servers" bash -c \
    "[ \"\$(openstack hypervisor stats show -f value -c running_vms)\" -ge 2 ]"
admin_project=$(openstack project show admin -f value -c id)
check "usage list shows the admin project" bash -c \
    "openstack usage list --start 2000-01-01 --end 2100-01-01 -f value -c Project | grep -qx $admin_project"
check "usage show --project admin has server hours" bash -c \
    "openstack usage show --project admin --start 2000-01-01 --end 2100-01-01 -f value -c Servers | grep -q '[1-9]'"

# Backups with rotation (the fake host's disk copy is a small qcow2).
check "server backup create (1)" openstack server backup create --name b1 --type daily --rotate 1 --wait p1
check "server backup create (2)" openstack server backup create --name b2 --type daily --rotate 1 --wait p1
backups_are() { [ "$(openstack image list --property image_type=backup -f value -c Name 2>/dev/null | paste -sd' ')" = "$1" ]; }
wait_for "rotation 1 keeps the newest backup only" 30 backups_are b2
check_eq "it says what it backs up" "daily" \
    "$(openstack image show b2 -f json | python3 -c 'import json,sys; i=json.load(sys.stdin); print(i.get("properties", i)["backup_type"])' 2>&1)"
check "image delete b2" openstack image delete b2

check "server delete" openstack server delete --wait p1 g1 z1
finish
