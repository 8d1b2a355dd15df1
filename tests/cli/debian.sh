#!/usr/bin/env bash
# A Debian cloud image (images/debian/build: cloud-init, OpenSSH, sudo)
# booted on ferrostack with real QEMU and the Linux dataplane, inside a
# sandbox network namespace this script makes and removes, with a cloud
# that gives config drives only to servers that ask (Nova's
# force_config_drive = False): one server reads who it is from its config
# drive, the other from the metadata service alone. For each: SSH as
# `debian` with the instance's key, `cloud-init status` done, the hostname
# is the server's name, `#cloud-config` user data wrote its file and ran its
# command, sudo works, and cloud-init names the datasource it used.
. "$(dirname "$0")/lib.bash"
state="$FERRO_WORK/cli-debian"
scratch="$FERRO_WORK/debian-files"
box="fsdeb-$$"
mkdir -p "$scratch"
[ -n "${FERRO_DEBIAN_IMAGE:-}" ] || { echo "FERRO_DEBIAN_IMAGE is not set (scripts/test builds it)" >&2; exit 1; }

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
ferro_start "$state" --external-cidr 172.16.0.1/20 --force-config-drive false || exit 1
. "$state/openrc"

ssh_opts=(-i "$scratch/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR -o BatchMode=yes)
on() { local ip=$1; shift; in_box ssh "${ssh_opts[@]}" "debian@$ip" "$@"; }
status_is() { [ "$(os server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }

check "image create debian" os image create --public --container-format bare --disk-format qcow2 \
    --file "$FERRO_DEBIAN_IMAGE" debian-12
check "flavor create" os flavor create --vcpus 1 --ram 512 --disk 3 m1.small
check "external network" os network create --external --share --provider-network-type flat --provider-physical-network physnet1 ext_net
check "external subnet" os subnet create --network ext_net --no-dhcp --gateway 172.16.0.1 --subnet-range 172.16.0.0/20 \
    --allocation-pool start=172.16.7.0,end=172.16.8.255 ext_subnet
check "tenant network" os network create deb_net
check "tenant subnet" os subnet create --network deb_net --subnet-range 10.70.0.0/24 deb_subnet
check "router" os router create deb_router
check "router add subnet" os router add subnet deb_router deb_subnet
check "router gateway" os router set deb_router --external-gateway ext_net
check "SSH open" os security group rule create --proto tcp --dst-port 22 default
ssh-keygen -q -t ed25519 -N '' -f "$scratch/id_ed25519"
check "keypair create" os keypair create --public-key "$scratch/id_ed25519.pub" deb-key

for name in deb-drive deb-metadata; do
    cat >"$scratch/$name.yaml" <<YAML
#cloud-config
write_files:
  - path: /etc/ferro-marker
    content: "written by cloud-init for $name\n"
runcmd:
  - [sh, -c, "echo ran > /var/tmp/runcmd-ran"]
YAML
done
check "server create deb-drive --config-drive True" os server create --image debian-12 --flavor m1.small \
    --key-name deb-key --network deb_net --config-drive True --user-data "$scratch/deb-drive.yaml" deb-drive
check "server create deb-metadata (no config drive)" os server create --image debian-12 --flavor m1.small \
    --key-name deb-key --network deb_net --user-data "$scratch/deb-metadata.yaml" deb-metadata
wait_for "deb-drive is ACTIVE" 180 status_is deb-drive ACTIVE
wait_for "deb-metadata is ACTIVE" 180 status_is deb-metadata ACTIVE
declare -A fip
for name in deb-drive deb-metadata; do
    fip[$name]=$(os floating ip create -f value -c floating_ip_address ext_net)
    check "floating ip on $name" os server add floating ip "$name" "${fip[$name]}"
done
for name in deb-drive deb-metadata; do
    ip=${fip[$name]}
    wait_for "$name: SSH as debian with the instance's key" 400 on "$ip" true
    wait_for "$name: cloud-init finished" 300 bash -c "ip netns exec $box ssh ${ssh_opts[*]} debian@$ip cloud-init status | grep -q 'status: done'"
    check_eq "$name: the hostname is the server's name" "$name" "$(on "$ip" hostname 2>&1)"
    check_eq "$name: write_files wrote its file" "written by cloud-init for $name" "$(on "$ip" cat /etc/ferro-marker 2>&1)"
    check_eq "$name: runcmd ran" "ran" "$(on "$ip" cat /var/tmp/runcmd-ran 2>&1)"
    check "$name: sudo works without a password" on "$ip" sudo -n true
done
check_eq "deb-drive read its config drive" "config-disk" "$(on "${fip[deb-drive]}" cloud-init query subplatform 2>&1 | cut -d' ' -f1)"
check_eq "deb-metadata had no config drive and read the metadata service" "metadata" \
    "$(on "${fip[deb-metadata]}" cloud-init query subplatform 2>&1 | cut -d' ' -f1)"
# A guest's password reaches its project as Nova's does: posted once to the
# metadata service, read through os-server-password, cleared by a member.
md_ip=${fip[deb-metadata]}
post_pw() { on "$md_ip" curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$1" http://169.254.169.254/openstack/latest/password; }
sdk_pw() {
    in_box env OS_CLIENT_CONFIG_FILE="$state/clouds.yaml" "$FERRO_VENV/bin/python" -c \
        "import openstack,sys; c=openstack.connect(cloud='ferrostack'); s=c.compute.find_server('deb-metadata'); $1"
}
check_eq "the guest posts its password to the metadata service" "200" "$(post_pw c2VjcmV0)"
check_eq "a second post is refused (409)" "409" "$(post_pw b3RoZXI=)"
check_eq "the guest reads it back" "c2VjcmV0" "$(on "$md_ip" curl -s http://169.254.169.254/openstack/latest/password)"
check_eq "the project reads it (os-server-password, openstacksdk)" "c2VjcmV0" "$(sdk_pw 'print(c.compute.get_server_password(s))' 2>&1)"
check "a member clears it" sdk_pw 'c.compute.clear_server_password(s)'
check_eq "after which it is empty" "" "$(sdk_pw 'print(c.compute.get_server_password(s))' 2>&1)"
check_fails "server set --password: Nova's 409 for a guest without the QEMU guest agent" "QEMU guest agent is not enabled" \
    os server set --password 'n3w-Passw0rd' deb-metadata
check "the console log shows cloud-init's end" bash -c "ip netns exec $box openstack console log show deb-metadata | grep -q 'Cloud-init v. .* finished'"
check "server delete" os server delete --wait deb-drive deb-metadata
for name in deb-drive deb-metadata; do check "floating ip delete ($name)" os floating ip delete "${fip[$name]}"; done
finish
