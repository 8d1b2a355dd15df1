#!/usr/bin/env bash
# Acceptance of images + compute through the unmodified openstack CLI with the
# real QEMU driver (KVM when it works, TCG otherwise): the seed's flavors and
# key pair, a server booted from the tiny image, its console, power actions,
# rebuild, the admin view of its host, an agent killed with SIGKILL, a build
# no host can take, the quota, and a delete that leaves nothing behind.
. "$(dirname "$0")/lib.bash"
state="$FERRO_WORK/cli-compute"
scratch="$FERRO_WORK/compute-files"
mkdir -p "$scratch"
cleanup() { ferro_stop; ferro_kill_vms "$state"; }
trap cleanup EXIT
[ -n "${FERRO_TINY_IMAGE:-}" ] || { echo "FERRO_TINY_IMAGE is not set (scripts/test builds it)" >&2; exit 1; }

# Server lists page at one server, so every list below (and every lookup
# by name) has to follow Nova's `next` links as the SDK does.
ferro_start "$state" --max-limit 1 || exit 1
. "$state/openrc"

status_is() { [ "$(openstack server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }
console_has() { openstack console log show "$1" 2>/dev/null | grep -q "$2"; }
qemu_pid() { cat "$state"/instances/"$1"/qemu.pid 2>/dev/null; }

check "image create tiny" openstack image create --public --container-format bare --disk-format qcow2 --file "$FERRO_TINY_IMAGE" tiny
check "flavor create m1.tiny" openstack flavor create --vcpus 1 --ram 1024 --disk 20 m1.tiny
check "flavor create m1.small" openstack flavor create --vcpus 1 --ram 2048 --disk 20 m1.small
check "flavor create m1.medium" openstack flavor create --vcpus 2 --ram 4096 --disk 20 m1.medium
check "flavor create m1.large" openstack flavor create --vcpus 4 --ram 8192 --disk 20 m1.large
ssh-keygen -q -t ed25519 -N '' -f "$scratch/id_test"
check "keypair create --public-key (import)" openstack keypair create --public-key "$scratch/id_test.pub" user1
check "keypair create (generate) returns a private key once" bash -c \
    "openstack keypair create kp2 | grep -q 'BEGIN OPENSSH PRIVATE KEY'"

check "server create --nic none --wait vm1" \
    openstack server create --image tiny --flavor m1.tiny --key-name user1 --nic none --wait vm1
check_eq "vm1 is ACTIVE" "ACTIVE" "$(openstack server show vm1 -f value -c status 2>&1)"
id=$(openstack server show vm1 -f value -c id)
wait_for "the console shows the guest's line with its UUID" 120 console_has vm1 "ferrostack-tiny: vm1 instance $id ready"

host=$(openstack hypervisor list -f value -c "Hypervisor Hostname" | head -n1)
check_eq "admin sees the server's host" "$host" "$(openstack server show vm1 -f value -c OS-EXT-SRV-ATTR:host 2>&1)"
check_eq "hypervisor list shows the host up" "up" "$(openstack hypervisor list -f value -c State | head -n1)"
check_eq "compute service list shows nova-compute up" "nova-compute up" \
    "$(openstack compute service list -f value -c Binary -c State | head -n1)"

check "server stop" openstack server stop vm1
wait_for "vm1 is SHUTOFF" 90 status_is vm1 SHUTOFF
check_eq "no qemu runs for a stopped server" "" "$(p=$(qemu_pid "$id"); [ -n "$p" ] && [ -d /proc/$p ] && echo running)"
check "server start" openstack server start vm1
wait_for "vm1 is ACTIVE again" 60 status_is vm1 ACTIVE
check "server reboot (soft)" openstack server reboot vm1
wait_for "vm1 is ACTIVE after a soft reboot" 120 status_is vm1 ACTIVE
check "server reboot --hard" openstack server reboot --hard vm1
wait_for "vm1 is ACTIVE after a hard reboot" 60 status_is vm1 ACTIVE
check "server rebuild" openstack server rebuild --image tiny vm1
wait_for "vm1 is ACTIVE after rebuild" 60 status_is vm1 ACTIVE
wait_for "the rebuilt guest boots again" 120 console_has vm1 "instance $id ready"
check "server resize --flavor m1.small --wait" openstack server resize --flavor m1.small --wait vm1
check_eq "vm1 waits in VERIFY_RESIZE" "VERIFY_RESIZE" "$(openstack server show vm1 -f value -c status 2>&1)"
check "server resize confirm" openstack server resize confirm vm1
wait_for "vm1 is ACTIVE after the resize" 60 status_is vm1 ACTIVE
check "its qemu now has the new flavor's 2048 MiB" bash -c "tr '\\0' ' ' </proc/\$(cat '$state/instances/$id/qemu.pid')/cmdline | grep -q -- '-m 2048 '"
wait_for "the resized guest boots again" 120 console_has vm1 "instance $id ready"

before=$(qemu_pid "$id")
kill -KILL "$FERRO_PID"
wait "$FERRO_PID" 2>/dev/null
FERRO_PID=
ferro_start "$state" --max-limit 1 || exit 1
. "$state/openrc"
check_eq "after SIGKILL and restart vm1 is ACTIVE" "ACTIVE" "$(openstack server show vm1 -f value -c status 2>&1)"
sleep 3
check_eq "…and its qemu was not restarted" "$before" "$(qemu_pid "$id")"
check "…and it still runs" grep -qs "$id" "/proc/$before/cmdline"

check "quota set --ram -1 (so the scheduler decides)" openstack quota set --ram -1 admin
check "flavor create huge" openstack flavor create --vcpus 1 --ram 99999999 --disk 1 huge
openstack server create --image tiny --flavor huge --nic none --wait big >/dev/null 2>&1
check_eq "a server bigger than any host goes ERROR" "ERROR" "$(openstack server show big -f value -c status 2>&1)"
check "its fault names the reason" bash -c "openstack server show big -f value -c fault | grep -q 'MB RAM free, 99999999 MB requested'"
check_eq "server list follows the pages: both servers, one per page" "big vm1" \
    "$(openstack server list -f value -c Name 2>&1 | sort | xargs)"
check "delete the failed server" openstack server delete --wait big
check "quota set --instances 1" openstack quota set --instances 1 --ram 51200 admin
check_fails "a create beyond the quota is refused" "Quota exceeded for instances" \
    openstack server create --image tiny --flavor m1.tiny --nic none over

pid=$(qemu_pid "$id")
check "server delete --wait vm1" openstack server delete --wait vm1
check_eq "no server is left" "" "$(openstack server list -f value -c ID 2>&1)"
# (An exited qemu may linger a moment as a zombie: its cmdline is then empty.)
check "vm1's qemu is gone" bash -c "! grep -qs '$id' /proc/$pid/cmdline"
check_eq "no instance files are left" "0" "$(find "$state/instances" -mindepth 1 | wc -l)"
finish
