#!/usr/bin/env bash
# The seed's walkthrough (Parts 3-7), verbatim through the unmodified
# openstack CLI, with real QEMU and the real Linux dataplane, inside a
# sandbox network namespace this script makes and removes: br-ex at
# 172.16.0.1/20 as on the seed's main node, an external flat network, a
# tenant network behind a router, SSH and ICMP on the default group, an
# instance with a floating IP reached from the sandbox host by ping and SSH,
# SNAT and the metadata service from inside, a second instance on the same
# network, another project's instance out of reach, security group and
# floating IP changes taking effect, Neutron refusals, and a teardown in
# reverse order that leaves no namespace, bridge, tap, nft table or dnsmasq.
. "$(dirname "$0")/lib.bash"
state="$FERRO_WORK/cli-network"
scratch="$FERRO_WORK/network-files"
box="fsnet-$$"
mkdir -p "$scratch"
[ -n "${FERRO_TINY_IMAGE:-}" ] || { echo "FERRO_TINY_IMAGE is not set (scripts/test builds it)" >&2; exit 1; }

# Everything this cloud made, by the names its ledger and pid files record.
web_pid=
cleanup() {
    [ -n "$web_pid" ] && kill "$web_pid" 2>/dev/null
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
pings() { in_box ping -c 1 -W 1 "$1"; }
no_ping() { ! in_box ping -c 2 -W 1 "$1" >/dev/null 2>&1; }
tcp_open() { in_box timeout 4 bash -c "exec 3<>/dev/tcp/$1/$2"; }
status_is() { [ "$(os server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }

# Part 3: image and flavors (the project's tiny image in place of jammy).
check "image create" os image create --public --container-format bare --disk-format qcow2 --file "$FERRO_TINY_IMAGE" jammy-amd64
check "flavor create m1.tiny" os flavor create --vcpus 1 --ram 1024 --disk 20 m1.tiny
check "flavor create m1.small" os flavor create --vcpus 1 --ram 2048 --disk 20 m1.small
check "flavor create m1.medium" os flavor create --vcpus 2 --ram 4096 --disk 20 m1.medium
check "flavor create m1.large" os flavor create --vcpus 4 --ram 8192 --disk 20 m1.large
# Part 4: the external network.
check "network create --external ext_net" os network create --external --share \
    --provider-network-type flat --provider-physical-network physnet1 ext_net
check "subnet create ext_subnet" os subnet create --network ext_net --no-dhcp \
    --gateway 172.16.0.1 --subnet-range 172.16.7.0/20 \
    --allocation-pool start=172.16.7.0,end=172.16.8.255 ext_subnet
check_eq "the CIDR is normalised as Neutron does" "172.16.0.0/20" "$(os subnet show ext_subnet -f value -c cidr 2>&1)"
# Part 5: the tenant network and router.
check "network create --internal user1_net" os network create --internal user1_net
check "subnet create user1_subnet" os subnet create --network user1_net \
    --subnet-range 192.169.0.0/24 --allocation-pool start=192.169.0.2,end=192.169.0.254 user1_subnet
check "router create" os router create user1_router
check "router add subnet" os router add subnet user1_router user1_subnet
check "router set --external-gateway" os router set user1_router --external-gateway ext_net
# Part 6: key pair, SSH and ICMP in the default group.
ssh-keygen -q -t rsa -b 2048 -N '' -f "$scratch/id_rsa"
check "keypair create --public-key" os keypair create --public-key "$scratch/id_rsa.pub" user1
check "security group rule create tcp 22" os security group rule create --proto tcp --dst-port 22 default
check "security group rule create icmp" os security group rule create --proto icmp default

# Bad input: Neutron's refusals, nothing half made.
check_fails "overlapping subnet" "overlaps with another subnet" \
    os subnet create --network user1_net --subnet-range 192.169.0.128/25 dup
check_fails "a CIDR that isn't one" "not a valid IP subnet" \
    os subnet create --network user1_net --subnet-range 192.169.0.0/33 bad
check_fails "allocation pool outside its CIDR" "spans beyond the subnet cidr" \
    os subnet create --network user1_net --subnet-range 192.168.50.0/24 --allocation-pool start=192.168.50.10,end=192.168.51.1 out
check_fails "floating IP on an internal network" "is not a valid external network" os floating ip create user1_net
check "a network no router reaches" os network create lone
check "its subnet" os subnet create --network lone --subnet-range 10.77.0.0/24 lone_subnet
check "a port on it" os port create --network lone lone_port
lone_fip=$(os floating ip create -f value -c floating_ip_address ext_net)
check_fails "floating IP for a port the router can't reach" "is not reachable from subnet" \
    os floating ip set --port lone_port "$lone_fip"
check_fails "delete a network that still has ports" "There are one or more ports still in use" os network delete lone
check "delete the refusals' floating IP" os floating ip delete "$lone_fip"
check "delete the refusals' port" os port delete lone_port
check "delete the refusals' network" os network delete lone
check_eq "nothing half made: no network 'dup'" "0" "$(os subnet list -f value -c Name | grep -c -x -e dup -e bad -e out)"

# Part 7: the instance and its floating IP.
# The sandbox host serves a page on its external address.
mkdir -p "$scratch/www" && echo "hello from the sandbox host" >"$scratch/www/hi"
ip netns exec "$box" python3 -m http.server 8000 --bind 172.16.0.1 --directory "$scratch/www" >/dev/null 2>&1 &
web_pid=$!
check "server create client" os server create --image jammy-amd64 --flavor m1.tiny \
    --key-name user1 --network user1_net --security-group default client
FLOATING_IP=$(os floating ip create -f value -c floating_ip_address ext_net)
check "floating ip create prints the address" test -n "$FLOATING_IP"
check "server add floating ip" os server add floating ip client "$FLOATING_IP"
wait_for "client is ACTIVE" 120 status_is client ACTIVE
fixed=$(os server show client -f json -c addresses | python3 -c 'import json,sys; a=json.load(sys.stdin)["addresses"]; print([x for x in a["user1_net"] if x!=sys.argv[1]][0])' "$FLOATING_IP" 2>/dev/null)
row=$(os server list | grep ' client ')
log "$row"
check "server list: client ACTIVE with its fixed and floating address under user1_net" bash -c \
    "echo '$row' | grep -q '| ACTIVE |' && echo '$row' | grep -Eq 'user1_net=($FLOATING_IP, $fixed|$fixed, $FLOATING_IP) '"
check_eq "network agent list: the network node's four agents, alive" \
    "DHCP agent True|L3 agent True|Linux bridge agent True|Metadata agent True" \
    "$(os network agent list -f value -c 'Agent Type' -c Alive 2>&1 | sort | paste -sd'|')"
check_eq "port list: instance, router interface, router gateway, floating IP" "4" "$(os port list -f value -c ID | wc -l)"
check_eq "the four owners" "compute:nova network:floatingip network:router_gateway network:router_interface" \
    "$(os port list --long -f value -c 'Device Owner' | sort | tr '\n' ' ' | sed 's/ $//')"
wait_for "ping the floating IP from the sandbox host" 120 pings "$FLOATING_IP"
wait_for "SSH through the floating IP" 60 on_vm "$FLOATING_IP" true
check_eq "ssh … hostname prints client" "client" "$(on_vm "$FLOATING_IP" hostname 2>&1)"
check_eq "inside: 172.16.0.1 answers (SNAT through the router)" "hello from the sandbox host" \
    "$(on_vm "$FLOATING_IP" timeout 10 wget -q -O - http://172.16.0.1:8000/hi 2>&1)"
id=$(os server show client -f value -c id)
md=$(on_vm "$FLOATING_IP" wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json 2>&1)
check_eq "inside: the metadata service names the instance itself" "$id client" \
    "$(printf '%s' "$md" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["uuid"], m["name"])' 2>&1)"
check_eq "inside: the EC2 tree has the key" "$(cut -d' ' -f1-2 "$scratch/id_rsa.pub")" \
    "$(on_vm "$FLOATING_IP" wget -q -O - http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key 2>&1 | cut -d' ' -f1-2)"
check "inside: instance names resolve in the network" on_vm "$FLOATING_IP" nslookup -type=a client

# The agent dies (SIGKILL) and comes back: the dataplane is rebuilt from
# desired state and an established connection survives it.
in_box ssh "${ssh_opts[@]}" "cloud@$FLOATING_IP" 'sleep 12; echo still-connected' >"$scratch/long-ssh.out" 2>&1 &
long_ssh=$!
sleep 2
kill -KILL "$FERRO_PID"; wait "$FERRO_PID" 2>/dev/null; FERRO_PID=
ferro_start "$state" --external-cidr 172.16.0.1/20 || exit 1
. "$state/openrc"
wait "$long_ssh"
check_eq "an SSH session opened before the restart is still connected" "still-connected" "$(cat "$scratch/long-ssh.out")"
check "new SSH connections work after the restart" on_vm "$FLOATING_IP" true
check_eq "the metadata service answers after the restart" "$id client" \
    "$(on_vm "$FLOATING_IP" wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json 2>&1 | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["uuid"], m["name"])' 2>&1)"

# A second instance on user1_net reaches the first by fixed IP.
# Instances that serve their name on port 8080 (user data runs as root).
serve_name() { printf '#!/bin/sh\nmkdir -p /tmp/www && echo %s >/tmp/www/who && httpd -p 8080 -h /tmp/www\n' "$1" >"$scratch/$1.sh"; }
serve_name client2
serve_name other
check "server create client2" os server create --image jammy-amd64 --flavor m1.tiny \
    --key-name user1 --network user1_net --security-group default --user-data "$scratch/client2.sh" client2
# Another project's instance on its own network.
check "project p2" os project create p2
check "user u2" os user create --password pw2 u2
check "u2 is a member of p2" os role add --project p2 --user u2 member
p2() { in_box env OS_USERNAME=u2 OS_PASSWORD=pw2 OS_PROJECT_NAME=p2 OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default openstack "$@"; }
check "p2: network" p2 network create p2_net
check "p2: subnet" p2 subnet create --network p2_net --subnet-range 10.20.0.0/24 p2_subnet
check "p2: port 8080 open in its default group" p2 security group rule create --proto tcp --dst-port 8080 default
check "p2: server" p2 server create --image jammy-amd64 --flavor m1.tiny --network p2_net --user-data "$scratch/other.sh" other
wait_for "client2 is ACTIVE" 120 status_is client2 ACTIVE
ledger_ns() { python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["namespaces"]))' "$state/dataplane/ledger.json"; }
p2_active() { [ "$(p2 server show other -f value -c status 2>/dev/null)" = ACTIVE ]; }
wait_for "other is ACTIVE" 120 p2_active
ip2=$(os server show client2 -f json -c addresses | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"]["user1_net"][0])' 2>/dev/null)
other_ip=$(p2 server show other -f json -c addresses | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"]["p2_net"][0])' 2>/dev/null)
on_vm "$FLOATING_IP" 'mkdir -p /tmp/www && echo client >/tmp/www/who && httpd -p 8080 -h /tmp/www' >/dev/null 2>&1
name_at() { on_vm "$FLOATING_IP" timeout 5 wget -q -O - "http://$1:8080/who" 2>/dev/null; }
client2_answers() { [ "$(name_at "$ip2")" = client2 ]; }
wait_for "client reaches client2 by fixed IP ($ip2)" 90 client2_answers
via_client2() { in_box ssh "${ssh_opts[@]}" -o "ProxyCommand=ssh ${ssh_opts[*]} -W %h:%p cloud@$FLOATING_IP" "cloud@$ip2" "$@"; }
check_eq "client2 reaches client by fixed IP ($fixed)" "client" "$(via_client2 timeout 5 wget -q -O - "http://$fixed:8080/who" 2>&1)"
check_eq "the metadata service tells client2 about client2" "client2" \
    "$(via_client2 wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json 2>&1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])' 2>&1)"
check "another project's instance ($other_ip) is out of reach" bash -c "! ip netns exec $box ssh ${ssh_opts[*]} cloud@$FLOATING_IP timeout 8 wget -q -O - http://$other_ip:8080/who"

made_ns=$(ledger_ns)
check "the dataplane made a router and DHCP namespaces" bash -c "echo '$made_ns' | grep -q qrouter- && echo '$made_ns' | grep -q qdhcp-"

# Security groups and floating IPs take effect.
check "a TCP port with no rule is unreachable (client serves 8080)" bash -c "! ip netns exec $box timeout 4 bash -c 'exec 3<>/dev/tcp/$FLOATING_IP/8080' 2>/dev/null"
check "security group create web" os security group create web
check "web allows tcp 8080" os security group rule create --proto tcp --dst-port 8080 web
check "server add security group client web" os server add security group client web
check "with web added, port 8080 answers" tcp_open "$FLOATING_IP" 8080
check "server remove security group client web" os server remove security group client web
closed_8080() { ! tcp_open "$FLOATING_IP" 8080 2>/dev/null; }
wait_for "with web removed, port 8080 is closed again" 10 closed_8080
rule=$(os security group rule list default --protocol tcp -f value -c ID | head -n1)
check "security group rule delete (SSH)" os security group rule delete "$rule"
no_ssh() { ! on_vm "$FLOATING_IP" true >/dev/null 2>&1; }
wait_for "new SSH connections are blocked" 20 no_ssh
check "ping still answers (ICMP rule)" pings "$FLOATING_IP"
check "server remove floating ip" os server remove floating ip client "$FLOATING_IP"
wait_for "without its floating IP the instance is unreachable" 20 no_ping "$FLOATING_IP"

# Everything goes, in reverse order.
check "p2: server delete" p2 server delete --wait other
check "p2: network delete (with its subnet)" p2 network delete p2_net
check "server delete client client2" os server delete --wait client client2
check "security group delete web" os security group delete web
check "floating ip delete" os floating ip delete "$FLOATING_IP"
check "router unset --external-gateway" os router unset --external-gateway user1_router
check "router remove subnet" os router remove subnet user1_router user1_subnet
check "router delete" os router delete user1_router
check "subnet delete" os subnet delete user1_subnet ext_subnet
check "network delete" os network delete user1_net ext_net
left_links() { in_box ip -br link | awk '{print $1}' | grep -E '^(tap|brq|dh-)'; }
gone() {
    [ -z "$(left_links)" ] || return 1
    local ns
    for ns in $made_ns; do ip netns list | grep -q "^$ns\b" && return 1; done
    return 0
}
wait_for "no namespace, bridge or tap is left" 30 gone
no_tables() { ! in_box nft list tables | grep -q ferrostack; }
wait_for "no ferrostack nft table is left" 10 no_tables
check_eq "no dnsmasq is left" "" "$(ls "$(cat "$state/dataplane/run-dir")"/dhcp/*/pid 2>/dev/null)"
ledger_empty() { [ "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",",":")))' "$state/dataplane/ledger.json")" = '{"links":[],"namespaces":[],"tables":false}' ]; }
wait_for "the ledger of what the dataplane made is empty" 10 ledger_empty
finish
