#!/usr/bin/env bash
# Block storage through the unmodified openstack CLI, with real QEMU, real
# qcow2 volume files and the real Linux dataplane, inside a sandbox network
# namespace this script makes and removes: `volume create`, `server add
# volume` hot-plugs the disk into a running guest (it appears without a
# reboot, gets a filesystem and a file), `server remove volume` unplugs it,
# the same volume attached to a second server still holds the file;
# extend (a detached volume, and an attached one that the running guest
# sees grow), snapshot and a volume from it, Cinder's refusals; servers booted
# from a volume (--volume and --boot-from-volume) reached by SSH; server
# snapshots (`server image create`) of a running server and of one booted
# from a volume, each booted again with the data written before; shelve
# (offloaded from the host) and unshelve keeping the disk; and a
# teardown that leaves no volume file, qemu process or namespace.
. "$(dirname "$0")/lib.bash"
state="$FERRO_WORK/cli-volume"
scratch="$FERRO_WORK/volume-files"
box="fsvol-$$"
rm -rf "$state" "$scratch"
mkdir -p "$scratch"
[ -n "${FERRO_TINY_IMAGE:-}" ] || { echo "FERRO_TINY_IMAGE is not set (scripts/test builds it)" >&2; exit 1; }

cleanup() {
    ferro_stop
    ferro_kill_vms "$state"
    ferro_cleanup_dataplane "$state"
    ip netns del "$box" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$box" && ip -n "$box" link set lo up || exit 1
in_box() { ip netns exec "$box" "$@"; }
os() { in_box openstack "$@"; }
export FERRO_WRAP="nsenter --net=/run/netns/$box"
ferro_start "$state" --external-cidr 172.16.0.1/20 || exit 1
. "$state/openrc"

ssh_opts=(-i "$scratch/id_rsa" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=4 -o LogLevel=ERROR -o BatchMode=yes)
on_vm() { local ip=$1; shift; in_box ssh "${ssh_opts[@]}" "cloud@$ip" "$@"; }
status_is() { [ "$(os server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }
vol_status_is() { [ "$(os volume show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }

# The guest's user-data (it runs as root): the tiny image has no udev, so
# this gives the login user each hot-plugged disk and mounts the ones that
# hold a file system at /mnt/<name>, unmounting what has gone. Bounded to
# ten minutes.
cat >"$scratch/disks.sh" <<'EOF'
#!/bin/sh
chown cloud /dev/vda
i=0
while [ $i -lt 1200 ]; do
    for d in /dev/vd[b-z]; do
        [ -b "$d" ] || continue
        n=${d#/dev/}
        chown cloud "$d"
        if ! grep -q "^$d " /proc/mounts; then
            mkdir -p "/mnt/$n"
            mount -t ext2 "$d" "/mnt/$n" 2>/dev/null && chmod 777 "/mnt/$n"
        fi
    done
    grep '^/dev/vd[b-z] ' /proc/mounts | while read -r d m _; do
        [ -b "$d" ] || umount -l "$m"
    done
    i=$((i + 1))
    sleep 0.5
done
EOF

check "image create" os image create --public --container-format bare --disk-format qcow2 --file "$FERRO_TINY_IMAGE" tiny
check "flavor create" os flavor create --vcpus 1 --ram 256 --disk 1 m1.tiny
check "network create ext_net" os network create --external --share \
    --provider-network-type flat --provider-physical-network physnet1 ext_net
check "subnet create ext_subnet" os subnet create --network ext_net --no-dhcp \
    --gateway 172.16.0.1 --subnet-range 172.16.0.0/20 --allocation-pool start=172.16.7.0,end=172.16.8.255 ext_subnet
check "network create net1" os network create net1
check "subnet create" os subnet create --network net1 --subnet-range 10.9.0.0/24 sub1
check "router create" os router create r1
check "router add subnet" os router add subnet r1 sub1
check "router set --external-gateway" os router set r1 --external-gateway ext_net
ssh-keygen -q -t ed25519 -N '' -f "$scratch/id_rsa"
check "keypair create" os keypair create --public-key "$scratch/id_rsa.pub" k1
check "security group rule tcp 22" os security group rule create --proto tcp --dst-port 22 default

# The volume API as the client sees it.
check_eq "volume service list: the scheduler and the volume service, up" "cinder-scheduler up|cinder-volume up" \
    "$(os volume service list -f value -c Binary -c State 2>&1 | sort | paste -sd'|')"
check_eq "volume type list: the default type" "__DEFAULT__" "$(os volume type list -f value -c Name 2>&1)"
check "volume create --size 1 v1" os volume create --size 1 v1
wait_for "v1 is available" 30 vol_status_is v1 available
vid=$(os volume show v1 -f value -c id)
check "the volume is a file on the volume host" bash -c "ls '$state'/volumes/ | grep -q '$vid'"
check_fails "size 0 is refused" "size" os volume create --size 0 v0
check_fails "an unknown type is refused" "could not be found" os volume create --size 1 --type nosuch vx
check_eq "nothing half made" "v1" "$(os volume list -f value -c Name 2>&1 | sort | paste -sd' ')"

boot() { # boot NAME [ARGS]: a server on net1 with a floating IP; prints the IP
    local name=$1; shift
    os server create --flavor m1.tiny --key-name k1 --network net1 \
        --user-data "$scratch/disks.sh" "$@" "$name" >/dev/null || return 1
    local fip
    fip=$(os floating ip create -f value -c floating_ip_address ext_net) || return 1
    os server add floating ip "$name" "$fip" >/dev/null || return 1
    echo "$fip"
}
ip1=$(boot vm1 --image tiny)
check "vm1 created with floating IP $ip1" test -n "$ip1"
wait_for "vm1 is ACTIVE" 120 status_is vm1 ACTIVE
wait_for "SSH into vm1" 120 on_vm "$ip1" true
boot_id=$(on_vm "$ip1" cat /proc/sys/kernel/random/boot_id 2>&1)
check_eq "vm1 has one disk before the attach" "vda" "$(on_vm "$ip1" 'ls /sys/block | grep ^vd' 2>&1 | paste -sd' ')"

check "server add volume vm1 v1" os server add volume vm1 v1
wait_for "v1 is in-use" 60 vol_status_is v1 in-use
has_vdb() { on_vm "$1" 'test -b /dev/vdb && [ -O /dev/vdb ]'; }
wait_for "the disk appears in the running guest as /dev/vdb" 30 has_vdb "$ip1"
check_eq "the guest sees 1 GiB" "2097152" "$(on_vm "$ip1" cat /sys/block/vdb/size 2>&1)"
check_eq "its serial is the volume id" "${vid:0:20}" "$(on_vm "$ip1" cat /sys/block/vdb/serial 2>&1)"
check_eq "server volume list (os-volume_attachments) shows it" "/dev/vdb $vid" \
    "$(os server volume list vm1 -f value -c Device -c 'Volume ID' 2>&1)"
check "a file system on it" on_vm "$ip1" mke2fs -q /dev/vdb
mounted() { on_vm "$1" 'grep -q "^/dev/vdb /mnt/vdb " /proc/mounts'; }
wait_for "mounted in the guest" 20 mounted "$ip1"
check "a file on it" on_vm "$ip1" 'echo kept-on-the-volume >/mnt/vdb/hello && sync'
check_fails "deleting an attached volume is refused" "Invalid volume\|in-use\|attached" os volume delete v1

check "server remove volume vm1 v1" os server remove volume vm1 v1
wait_for "v1 is available again" 60 vol_status_is v1 available
no_vdb() { ! on_vm "$1" 'test -e /sys/block/vdb'; }
wait_for "the disk is gone from the running guest" 30 no_vdb "$ip1"
check_eq "vm1 was not rebooted (same boot id)" "$boot_id" "$(on_vm "$ip1" cat /proc/sys/kernel/random/boot_id 2>&1)"

ip2=$(boot vm2 --image tiny)
check "vm2 created with floating IP $ip2" test -n "$ip2"
wait_for "vm2 is ACTIVE" 120 status_is vm2 ACTIVE
wait_for "SSH into vm2" 120 on_vm "$ip2" true
check "server add volume vm2 v1" os server add volume vm2 v1
wait_for "v1 is in-use on vm2" 60 vol_status_is v1 in-use
wait_for "mounted in vm2" 30 mounted "$ip2"
check_eq "vm2 reads the file vm1 wrote" "kept-on-the-volume" "$(on_vm "$ip2" cat /mnt/vdb/hello 2>&1)"
check "server remove volume vm2 v1" os server remove volume vm2 v1
wait_for "v1 is available after vm2" 60 vol_status_is v1 available

# Extend, snapshot, a volume from the snapshot.
check "volume set --size 2" os volume set --size 2 v1
size_is() { [ "$(os volume show "$1" -f value -c size 2>/dev/null)" = "$2" ]; }
wait_for "v1 is 2 GiB" 30 size_is v1 2
check_fails "extending to a smaller size is refused" "must be greater\|smaller" os volume set --size 1 v1
check "volume snapshot create" os volume snapshot create --volume v1 s1
snap_ok() { [ "$(os volume snapshot show s1 -f value -c status 2>/dev/null)" = available ]; }
wait_for "s1 is available" 30 snap_ok
check "volume create --snapshot s1 v2" os volume create --snapshot s1 v2
wait_for "v2 is available" 30 vol_status_is v2 available
check "server add volume vm2 v2" os server add volume vm2 v2
wait_for "v2 mounted in vm2" 60 mounted "$ip2"
check_eq "the volume made from the snapshot holds the file" "kept-on-the-volume" "$(on_vm "$ip2" cat /mnt/vdb/hello 2>&1)"
check_eq "the guest sees v2's 2 GiB" "4194304" "$(on_vm "$ip2" cat /sys/block/vdb/size 2>&1)"
# The client negotiates 3.42 or later (an in-use volume is extended from
# 3.42, as in Cinder; volume_flow.rs checks the refusal before it).
check "volume set --size 3 on the attached v2" os volume set --size 3 v2
sees_3g() { [ "$(on_vm "$ip2" cat /sys/block/vdb/size 2>/dev/null)" = 6291456 ]; }
wait_for "the running guest sees 3 GiB" 30 sees_3g
check_eq "v2 is still in use" "in-use" "$(os volume show v2 -f value -c status 2>&1)"

# Boot from volume: the user's bootable volume (--volume), and one made
# from the image (--boot-from-volume), removed with its server.
check "volume create --image tiny --bootable bv" os volume create --image tiny --size 1 --bootable bv
wait_for "bv is available" 60 vol_status_is bv available
check_eq "bv is bootable" "True" "$(os volume show bv -f value -c bootable 2>&1)"
bvid=$(os volume show bv -f value -c id)
ip3=$(boot onvol --volume bv)
check "onvol created with floating IP $ip3" test -n "$ip3"
wait_for "onvol is ACTIVE" 120 status_is onvol ACTIVE
wait_for "SSH into onvol" 120 on_vm "$ip3" true
check_eq "onvol says its name" "onvol" "$(on_vm "$ip3" hostname 2>&1)"
check_eq "its root disk vda is the volume" "${bvid:0:20}" "$(on_vm "$ip3" cat /sys/block/vda/serial 2>&1)"
check_eq "server show: booted from volume" "N/A (booted from volume)" "$(os server show onvol -f value -c image 2>&1)"
onvol_id=$(os server show onvol -f value -c id)
check "the host keeps no root disk of its own" test ! -e "$state/instances/$onvol_id/disk.qcow2"
check_fails "the root volume can't be detached" "root device" os server remove volume onvol bv
ip4=$(boot bfv --image tiny --boot-from-volume 1 --delete-on-termination)
check "bfv created with floating IP $ip4" test -n "$ip4"
wait_for "bfv is ACTIVE" 120 status_is bfv ACTIVE
wait_for "SSH into bfv" 120 on_vm "$ip4" true
check_eq "bfv says its name" "bfv" "$(on_vm "$ip4" hostname 2>&1)"
bfv_vol=$(os server show bfv -f json -c volumes_attached | python3 -c 'import json,sys; print(json.load(sys.stdin)["volumes_attached"][0]["id"])' 2>/dev/null)
check_eq "its volume is in use" "in-use" "$(os volume show "$bfv_vol" -f value -c status 2>&1)"
# Server snapshots (`server image create`): the tiny guest's root is in
# RAM, so a marker is written on the disk itself, past its boot partition.
mark() { on_vm "$1" "echo $2 | dd of=/dev/vda bs=1M seek=200 conv=fsync 2>/dev/null"; }
marker() { on_vm "$1" 'dd if=/dev/vda bs=1M skip=200 count=1 2>/dev/null | head -n 1'; }
check "a marker on vm1's disk" mark "$ip1" snap-of-vm1
check "server image create --wait vm1-snap vm1 (running)" os server image create --wait --name vm1-snap vm1
check_eq "the snapshot is a private qcow2 image" "qcow2 active private" \
    "$(os image show vm1-snap -f value -c disk_format -c visibility -c status 2>&1 | paste -sd' ')"
check_eq "vm1 is ACTIVE again" "ACTIVE" "$(os server show vm1 -f value -c status 2>&1)"
check_eq "vm1 was paused, not rebooted (same boot id)" "$boot_id" "$(on_vm "$ip1" cat /proc/sys/kernel/random/boot_id 2>&1)"
ip5=$(boot fromsnap --image vm1-snap)
check "fromsnap created with floating IP $ip5" test -n "$ip5"
wait_for "fromsnap is ACTIVE" 120 status_is fromsnap ACTIVE
wait_for "SSH into fromsnap" 120 on_vm "$ip5" true
check_eq "fromsnap's disk holds the marker written before the snapshot" "snap-of-vm1" "$(marker "$ip5" 2>&1)"
# Shelve offloads vm1 from its host (its disk kept as an image); unshelve
# boots it again from that image, with the marker.
check "server shelve vm1" os server shelve vm1
wait_for "vm1 is SHELVED_OFFLOADED" 120 status_is vm1 SHELVED_OFFLOADED
vm1_id=$(os server show vm1 -f value -c id)
off_host() { [ ! -e "$state/instances/$vm1_id" ]; }
wait_for "vm1's VM and disk are gone from the host" 60 off_host
check_eq "its disk is kept as the image vm1-shelved" "active" "$(os image show vm1-shelved -f value -c status 2>&1)"
check "server unshelve vm1" os server unshelve vm1
wait_for "vm1 is ACTIVE after unshelve" 120 status_is vm1 ACTIVE
wait_for "SSH into vm1 after unshelve" 120 on_vm "$ip1" true
check_eq "vm1's disk kept the marker through shelve and unshelve" "snap-of-vm1" "$(marker "$ip1" 2>&1)"
shelved_gone() { ! os image show vm1-shelved >/dev/null 2>&1; }
wait_for "the shelved image is removed once vm1 runs" 30 shelved_gone
check "a marker on bfv's volume" mark "$ip4" snap-of-bfv
check "server image create --wait bfv-snap bfv (booted from a volume)" os server image create --wait --name bfv-snap bfv
check_eq "its image holds no data, only the volume's mapping" "0 True" \
    "$(os image show bfv-snap -f json | python3 -c 'import json,sys; i=json.load(sys.stdin); p=i.get("properties",i); print(i["size"], p["bdm_v2"])' 2>&1)"
snap_of_bfv=$(os volume snapshot list -f value -c ID -c Name 2>/dev/null | awk '/snapshot for bfv-snap/ {print $1}')
check "the volume service has the volume's snapshot" test -n "$snap_of_bfv"
ip6=$(boot frombfvsnap --image bfv-snap)
check "frombfvsnap created with floating IP $ip6" test -n "$ip6"
wait_for "frombfvsnap is ACTIVE" 120 status_is frombfvsnap ACTIVE
wait_for "SSH into frombfvsnap" 120 on_vm "$ip6" true
check_eq "it boots from a new volume holding bfv's marker" "snap-of-bfv" "$(marker "$ip6" 2>&1)"
check_eq "server show: booted from volume" "N/A (booted from volume)" "$(os server show frombfvsnap -f value -c image 2>&1)"
check "server delete fromsnap frombfvsnap" os server delete --wait fromsnap frombfvsnap
check "volume snapshot delete (bfv's)" os volume snapshot delete "$snap_of_bfv"
snap_gone() { ! os volume snapshot show "$snap_of_bfv" >/dev/null 2>&1; }
wait_for "bfv's snapshot is gone" 30 snap_gone
check "image delete vm1-snap bfv-snap" os image delete vm1-snap bfv-snap

check "server delete onvol bfv" os server delete --wait onvol bfv
wait_for "bv is available after its server went" 60 vol_status_is bv available
bfv_vol_gone() { ! os volume show "$bfv_vol" >/dev/null 2>&1; }
wait_for "bfv's volume went with it (delete on termination)" 60 bfv_vol_gone
check "volume delete bv" os volume delete bv

# Teardown: a server deleted with a volume attached frees the volume.
check "server delete vm1 vm2" os server delete --wait vm1 vm2
wait_for "v2 is available after its server went" 60 vol_status_is v2 available
check "volume snapshot delete" os volume snapshot delete s1
no_snapshot() { [ -z "$(os volume snapshot list -f value -c ID 2>/dev/null)" ]; }
wait_for "no snapshot is left" 30 no_snapshot
check "volume delete" os volume delete v1 v2
no_volume() { [ -z "$(os volume list -f value -c ID 2>/dev/null)" ]; }
wait_for "no volume is left" 30 no_volume
no_files() { [ -z "$(ls "$state/volumes" 2>/dev/null)" ]; }
wait_for "no volume file is left" 30 no_files
no_qemu() { ! ls "$state"/instances/*/qemu.pid >/dev/null 2>&1; }
wait_for "no qemu is left" 30 no_qemu
finish
