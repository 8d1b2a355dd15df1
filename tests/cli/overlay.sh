#!/usr/bin/env bash
# Tenant networks across hosts over VXLAN. A controller on PostgreSQL, a
# network node (h1: routers, DHCP, metadata, br-ex at 172.16.0.1/20, the
# sandbox's external side) and two compute hosts (h2, h3), each in a network
# namespace of its own on an underlay bridge this script makes (inside a
# namespace too); real QEMU, the unmodified openstack CLI. Four servers on
# user1_net, two on each compute host: DHCP (with the overlay's MTU) and
# their own metadata from the network node, each reached through its
# floating IP from the external side, each pinging and SSHing to every
# other by fixed IP, a port whose group has no rule for it unreachable from
# the other host while the default group's members reach each other. A
# second project on the same CIDR (10.0.0.0/24) over the same hosts: its
# servers reach each other and nothing of the first project, and its
# network has a VNI of its own. Cold migration with its disk (confirm and
# revert) and live migration under ping and SSH, keeping fixed and
# floating IPs. A load balancer on the network node sends to members on
# both compute hosts. Deleting everything leaves no VXLAN device,
# forwarding entry, bridge, tap, namespace or dnsmasq on any host.
. "$(dirname "$0")/lib.bash"
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ -n "${FERRO_TINY_IMAGE:-}" ] || { echo "FERRO_TINY_IMAGE is not set (scripts/test builds it)" >&2; exit 1; }

tag=$$
under="fsou-$tag"
ctl="fsoc-$tag"
base="$FERRO_WORK/overlay"
ctl_state="$base/controller"
pg="$base/pg"
scratch="$base/files"
rm -rf "$base"
mkdir -p "$scratch"
host_ns() { echo "fso$1-$tag"; }
declare -A AGENT_PID=()
CTL_PID=

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 5 s
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local i
    for i in "${!AGENT_PID[@]}"; do stop_pid "${AGENT_PID[$i]}"; done
    stop_pid "$CTL_PID"
    for i in 1 2 3; do
        ferro_kill_vms "$base/h$i"
        ferro_cleanup_dataplane "$base/h$i"
    done
    "$repo/scripts/pg-test-server" stop "$pg" || true
    for i in 1 2 3; do ip netns del "$(host_ns "$i")" 2>/dev/null || true; done
    ip netns del "$ctl" 2>/dev/null || true
    ip netns del "$under" 2>/dev/null || true
}
trap cleanup EXIT

# The underlay: controller 10.98.0.1, host i 10.98.0.1i. (Daemons are
# started by nsenter itself, not through a function, so $! is their pid.)
ip netns add "$under" && ip -n "$under" link set lo up \
    && ip -n "$under" link add br0 type bridge && ip -n "$under" link set br0 up || exit 1
add_machine() { # add_machine NS ADDRESS LEG
    ip netns add "$1" && ip -n "$1" link set lo up \
        && ip -n "$under" link add "$3" type veth peer name eth0 netns "$1" \
        && ip -n "$under" link set "$3" master br0 up \
        && ip -n "$1" addr add "$2/24" dev eth0 && ip -n "$1" link set eth0 up
}
add_machine "$ctl" 10.98.0.1 c0 || exit 1
for i in 1 2 3; do add_machine "$(host_ns "$i")" "10.98.0.1$i" "h$i" || exit 1; done
# The external network's bridge on the network node, as on the seed's main node.
nn=$(host_ns 1)
ip -n "$nn" link add br-ex type bridge && ip -n "$nn" addr add 172.16.0.1/20 dev br-ex \
    && ip -n "$nn" link set br-ex up || exit 1
in_ctl() { nsenter --net="/run/netns/$ctl" "$@"; }
in_ext() { nsenter --net="/run/netns/$nn" "$@"; }
on_host() { local i=$1; shift; nsenter --net="/run/netns/$(host_ns "$i")" "$@"; }
os() { in_ctl openstack "$@"; }

pg_url=$(in_ctl "$repo/scripts/pg-test-server" start "$pg") || exit 1
nsenter --net="/run/netns/$ctl" "$FERRO_BIN" controller --state-dir "$ctl_state" --database-url "$pg_url" --bind 10.98.0.1 \
    --ephemeral-ports --bcrypt-cost 4 >>"$ctl_state.log" 2>&1 &
CTL_PID=$!
for _ in $(seq 1 200); do [ -f "$ctl_state/openrc" ] && break; sleep 0.05; done
[ -f "$ctl_state/openrc" ] || { cat "$ctl_state.log" >&2; exit 1; }
. "$ctl_state/openrc"
url=$(cat "$ctl_state/contract/url")
for i in 1 2 3; do
    token=$(in_ctl "$FERRO_BIN" host add "h$i" --state-dir "$ctl_state" --database-url "$pg_url" 2>/dev/null)
    role=()
    [ "$i" = 1 ] && role=(--network-node)
    nsenter --net="/run/netns/$(host_ns "$i")" "$FERRO_BIN" agent --join "$url" --token "$token" --state-dir "$base/h$i" \
        --host-name "h$i" "${role[@]}" >>"$base/h$i.log" 2>&1 &
    AGENT_PID[$i]=$!
done
hosts_up() { [ "$(os hypervisor list -f value -c 'Hypervisor Hostname' -c State 2>/dev/null | sort | xargs)" = "h1 up h2 up h3 up" ]; }
wait_for "openstack hypervisor list shows h1, h2 and h3 up" 60 hosts_up
check_eq "network agent list: DHCP, L3 and metadata on h1 only" "DHCP agent h1|L3 agent h1|Metadata agent h1" \
    "$(os network agent list -f value -c 'Agent Type' -c Host 2>&1 | grep -v 'Linux bridge' | sort | paste -sd'|')"

check "image create tiny" os image create --public --container-format bare --disk-format qcow2 --file "$FERRO_TINY_IMAGE" tiny
check "flavor create m1.nano" os flavor create --vcpus 1 --ram 256 --disk 1 m1.nano
check "network create --external ext_net" os network create --external --share \
    --provider-network-type flat --provider-physical-network physnet1 ext_net
check "subnet create ext_subnet" os subnet create --network ext_net --no-dhcp \
    --gateway 172.16.0.1 --subnet-range 172.16.0.0/20 --allocation-pool start=172.16.7.0,end=172.16.8.255 ext_subnet
check "network create user1_net" os network create user1_net
check_eq "a tenant network is VXLAN with the overlay's MTU" "1450 vxlan" \
    "$(os network show user1_net -f value -c provider:network_type -c mtu 2>&1 | xargs)"
check "subnet create 10.0.0.0/24" os subnet create --network user1_net --subnet-range 10.0.0.0/24 user1_subnet
check "router create" os router create user1_router
check "router add subnet" os router add subnet user1_router user1_subnet
check "router set --external-gateway" os router set user1_router --external-gateway ext_net
ssh-keygen -q -t rsa -b 2048 -N '' -f "$scratch/id_rsa"
check "keypair create" os keypair create --public-key "$scratch/id_rsa.pub" user1
check "default group: tcp 22" os security group rule create --proto tcp --dst-port 22 default
check "default group: icmp" os security group rule create --proto icmp default
check "security group create sshonly" os security group create sshonly
check "sshonly: tcp 22" os security group rule create --proto tcp --dst-port 22 sshonly
check "sshonly: icmp" os security group rule create --proto icmp sshonly

# Servers that serve their name on port 8080 (user data runs as root), and
# a page that pings an address from the server itself (busybox's ping needs
# root, and the tiny image's user is not root).
serve_name() {
    cat >"$scratch/$1.sh" <<EOS
#!/bin/sh
chown cloud /dev/vda
mkdir -p /tmp/www/cgi-bin && echo $1 >/tmp/www/who
cat >/tmp/www/cgi-bin/ping <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
case "\$QUERY_STRING" in *[!0-9.]*|'') echo bad; exit 0;; esac
if ping -c 1 -W 3 "\$QUERY_STRING" >/dev/null 2>&1; then echo pong; else echo lost; fi
CGI
chmod 755 /tmp/www/cgi-bin/ping
httpd -p 8080 -h /tmp/www
EOS
}
# ping_from VM ADDRESS: pong or lost, for an ICMP echo from the VM itself.
ping_from() { on_vm "$1" wget -q -O - "http://127.0.0.1:8080/cgi-bin/ping?$2" 2>&1; }
pings_from() { [ "$(ping_from "$1" "$2")" = pong ]; }
declare -A HOST_OF=([vm1]=h2 [vm2]=h2 [vm3]=h3 [vm4]=h3)
VMS="vm1 vm2 vm3 vm4"
for vm in $VMS; do
    serve_name "$vm"
    group=default
    [ "$vm" = vm4 ] && group=sshonly
    check "server create $vm --availability-zone nova:${HOST_OF[$vm]}" os server create --image tiny --flavor m1.nano \
        --key-name user1 --network user1_net --security-group "$group" --user-data "$scratch/$vm.sh" \
        --availability-zone "nova:${HOST_OF[$vm]}" "$vm"
done
status_is() { [ "$(os server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }
declare -A FIP=() FIXED=()
for vm in $VMS; do
    wait_for "$vm is ACTIVE" 180 status_is "$vm" ACTIVE
    check_eq "$vm runs on ${HOST_OF[$vm]}" "${HOST_OF[$vm]}" "$(os server show "$vm" -f value -c OS-EXT-SRV-ATTR:host 2>&1)"
    FIXED[$vm]=$(os server show "$vm" -f json -c addresses | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"]["user1_net"][0])' 2>/dev/null)
    FIP[$vm]=$(os floating ip create -f value -c floating_ip_address ext_net)
    check "server add floating ip $vm ${FIP[$vm]}" os server add floating ip "$vm" "${FIP[$vm]}"
done

ssh_opts=(-i "$scratch/id_rsa" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR -o BatchMode=yes)
on_vm() { local vm=$1; shift; in_ext ssh "${ssh_opts[@]}" "cloud@${FIP[$vm]}" "$@"; }
# SSH from VM $1 to VM $2's fixed address: the TCP connection is $1's.
from_vm() { local a=$1 b=$2; shift 2; in_ext ssh "${ssh_opts[@]}" -o "ProxyCommand=ssh ${ssh_opts[*]} -W %h:%p cloud@${FIP[$a]}" "cloud@${FIXED[$b]}" "$@"; }
ext_pings() { in_ext ping -c 1 -W 1 "$1"; }
for vm in $VMS; do
    wait_for "the external side pings $vm's floating IP ${FIP[$vm]} (via the router on h1)" 180 ext_pings "${FIP[$vm]}"
    wait_for "SSH to $vm through its floating IP" 90 on_vm "$vm" true
    check_eq "$vm: hostname" "$vm" "$(on_vm "$vm" hostname 2>&1)"
done
check_eq "DHCP from the network node gave vm1 its address" "${FIXED[vm1]}" \
    "$(on_vm vm1 ip -4 addr show eth0 2>&1 | awk '/inet /{print $2}' | cut -d/ -f1)"
check_eq "and the overlay's MTU" 1450 "$(on_vm vm1 cat /sys/class/net/eth0/mtu 2>&1)"
for vm in $VMS; do
    check_eq "the metadata service (on h1) tells $vm about $vm" "$vm" \
        "$(on_vm "$vm" wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json 2>&1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])' 2>&1)"
done
for a in $VMS; do
    for b in $VMS; do
        [ "$a" = "$b" ] && continue
        check "$a (${HOST_OF[$a]}) pings $b (${HOST_OF[$b]}) at ${FIXED[$b]}" pings_from "$a" "${FIXED[$b]}"
        check_eq "$a SSHes to $b by fixed IP" "$b" "$(from_vm "$a" "$b" hostname 2>&1)"
    done
done
check_eq "the default group's members reach each other across hosts (vm1 -> vm3:8080)" vm3 \
    "$(on_vm vm1 timeout 8 wget -q -O - "http://${FIXED[vm3]}:8080/who" 2>&1)"
check "a port whose group has no rule for 8080 is unreachable from the other host (vm1 -> vm4:8080)" \
    bash -c "! ip netns exec $nn ssh ${ssh_opts[*]} cloud@${FIP[vm1]} timeout 8 wget -q -O - http://${FIXED[vm4]}:8080/who"
check_eq "nor from its own host (vm3 -> vm4:8080)" "" \
    "$(on_vm vm3 timeout 8 wget -q -O - "http://${FIXED[vm4]}:8080/who" 2>/dev/null)"

# A load balancer: HAProxy on the network node (h1), its members on h2 and h3.
check "loadbalancer create (HAProxy runs on h1)" os loadbalancer create --name lb1 --vip-subnet-id user1_subnet --wait
vip=$(os loadbalancer show lb1 -f value -c vip_address)
check "the members' group lets the VIP in on 8080" os security group rule create --proto tcp --dst-port 8080 --remote-ip "$vip/32" default
check "listener create HTTP:80" os loadbalancer listener create --name http --protocol HTTP --protocol-port 80 --wait lb1
check "pool create" os loadbalancer pool create --name web --listener http --protocol HTTP --lb-algorithm ROUND_ROBIN --wait
for vm in vm1 vm3; do
    check "member create $vm (on ${HOST_OF[$vm]})" os loadbalancer member create --address "${FIXED[$vm]}" --protocol-port 8080 --wait web
done
lb_fip=$(os floating ip create -f value -c floating_ip_address ext_net)
check "floating ip set --port (the VIP's)" os floating ip set --port "$(os loadbalancer show lb1 -f value -c vip_port_id)" "$lb_fip"
lb_get() { in_ext curl -sS --max-time 10 "http://$lb_fip/who"; }
wait_for "the load balancer answers through its floating IP" 60 lb_get
check_eq "4 requests: the members on h2 and h3 both answer" "vm1 vm3" "$(for i in 1 2 3 4; do lb_get; done | sort -u | paste -sd' ')"
check "loadbalancer delete --cascade --wait" os loadbalancer delete --cascade --wait lb1
check "floating ip delete (the VIP's)" os floating ip delete "$lb_fip"

vx_of() { # vx_of HOST NETWORK_ID: the VNI of that network's tunnel device on the host
    local dev="vx-${2:0:11}"
    on_host "$1" ip -d -j link show dev "$dev" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["linkinfo"]["info_data"]["id"])' 2>/dev/null
}
net1=$(os network show user1_net -f value -c id)
vni1=$(os network show user1_net -f value -c provider:segmentation_id)
for i in 1 2 3; do
    check_eq "h$i has user1_net's tunnel with its VNI $vni1" "$vni1" "$(vx_of "$i" "$net1")"
done
fdb_of() { on_host "$1" bridge fdb show dev "vx-${2:0:11}" 2>/dev/null; }
mac3=$(os port list --server vm3 -f value -c 'MAC Address')
check "h2 pins vm3's MAC to h3's underlay address (no learning)" bash -c "echo '$(fdb_of 2 "$net1")' | grep -q '^$mac3 dst 10.98.0.13 '"
check_eq "h2 floods to h1 and h3 only" "10.98.0.11 10.98.0.13" \
    "$(fdb_of 2 "$net1" | awk '$1=="00:00:00:00:00:00" {print $3}' | sort | xargs)"

# A second project on the same CIDR, over the same hosts.
check "project p2" os project create p2
check "admin works in p2 too" os role add --project p2 --user admin admin
p2() { in_ctl env OS_PROJECT_NAME=p2 OS_PROJECT_DOMAIN_NAME=Default openstack "$@"; }
check "p2: network" p2 network create p2_net
check "p2: subnet 10.0.0.0/24 (the same CIDR)" p2 subnet create --network p2_net --subnet-range 10.0.0.0/24 p2_subnet
check "p2: router" p2 router create p2_router
check "p2: router add subnet" p2 router add subnet p2_router p2_subnet
check "p2: router gateway" p2 router set p2_router --external-gateway ext_net
check "p2: security group p2ssh" p2 security group create p2ssh
check "p2ssh: tcp 22" p2 security group rule create --proto tcp --dst-port 22 p2ssh
check "p2ssh: icmp" p2 security group rule create --proto icmp p2ssh
declare -A P2_IP=([other2]=10.0.0.200 [other3]=10.0.0.201)
for o in other2 other3; do
    h=h${o#other}
    check "p2: port at ${P2_IP[$o]}" p2 port create --network p2_net --security-group p2ssh \
        --fixed-ip "subnet=p2_subnet,ip-address=${P2_IP[$o]}" "$o-port"
    serve_name "$o"
    check "p2: server $o on $h" p2 server create --image tiny --flavor m1.nano --key-name user1 --port "$o-port" \
        --user-data "$scratch/$o.sh" --availability-zone "nova:$h" "$o"
done
p2_status() { [ "$(p2 server show "$1" -f value -c status 2>/dev/null)" = ACTIVE ]; }
for o in other2 other3; do wait_for "p2: $o is ACTIVE" 180 p2_status "$o"; done
net2=$(p2 network show p2_net -f value -c id)
vni2=$(p2 network show p2_net -f value -c provider:segmentation_id)
check "p2_net has a VNI of its own ($vni2, user1_net's is $vni1)" test -n "$vni2" -a "$vni2" != "$vni1"
check_eq "h2's tunnel for p2_net carries that VNI" "$vni2" "$(vx_of 2 "$net2")"
p2_fip=$(p2 floating ip create -f value -c floating_ip_address ext_net)
check "p2: floating IP on other2" p2 server add floating ip other2 "$p2_fip"
FIP[other2]=$p2_fip
wait_for "SSH to other2 through its floating IP" 120 on_vm other2 true
wait_for "p2: other2's page is up" 60 on_vm other2 wget -q -O /dev/null http://127.0.0.1:8080/who
check "p2: other2 (h2) pings other3 (h3) at 10.0.0.201" pings_from other2 10.0.0.201
check_eq "p2: other2 reaches nothing of user1_net at vm3's address ${FIXED[vm3]}" lost "$(ping_from other2 "${FIXED[vm3]}")"
for vm in vm1 vm3; do
    for a in 10.0.0.200 10.0.0.201; do
        check_eq "user1: $vm (${HOST_OF[$vm]}) does not reach p2's $a" lost "$(ping_from "$vm" "$a")"
    done
done

# Cold migration: vm1 moves from h2 to h3 and stays (confirm); vm3 moves
# from h3 to h2 and comes back (revert). Their disks go with them (a marker
# written on the disk, past its boot partition, since the root is in RAM).
mark() { on_vm "$1" "echo $2 | dd of=/dev/vda bs=1M seek=200 conv=fsync 2>/dev/null"; }
marker() { on_vm "$1" 'dd if=/dev/vda bs=1M skip=200 count=1 2>/dev/null | head -n 1'; }
host_is() { [ "$(os server show "$1" -f value -c OS-EXT-SRV-ATTR:host 2>/dev/null)" = "$2" ]; }
id_of() { os server show "$1" -f value -c id 2>/dev/null; }
vm1_id=$(id_of vm1)
vm3_id=$(id_of vm3)
check "a marker on vm1's disk" mark vm1 went-with-vm1
check_fails "server migrate --host to its own host is refused" "to current host" \
    os --os-compute-api-version 2.56 server migrate --host h2 vm1
check "server migrate --host h3 vm1" os --os-compute-api-version 2.56 server migrate --host h3 vm1
wait_for "vm1 waits in VERIFY_RESIZE" 240 status_is vm1 VERIFY_RESIZE
check "vm1 is on h3" host_is vm1 h3
check "h2 keeps vm1's stopped copy until confirm" test -e "$base/h2/instances/$vm1_id/disk.qcow2"
check "server resize confirm vm1" os server resize confirm vm1
wait_for "vm1 is ACTIVE on h3" 60 status_is vm1 ACTIVE
gone_from() { [ ! -e "$base/$1/instances/$2" ]; }
wait_for "h2 removed its copy of vm1" 60 gone_from h2 "$vm1_id"
check_eq "vm1 kept its fixed IP" "${FIXED[vm1]}" \
    "$(os server show vm1 -f json -c addresses | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"]["user1_net"][0])' 2>&1)"
wait_for "vm1 answers SSH on its floating IP ${FIP[vm1]} from h3" 240 on_vm vm1 true
marker_is() { [ "$(marker "$1" 2>/dev/null)" = "$2" ]; }
wait_for "vm1's disk kept the marker" 60 marker_is vm1 went-with-vm1
wait_for "vm1's page is up again" 60 on_vm vm1 wget -q -O /dev/null http://127.0.0.1:8080/who
check "vm1 (now on h3) pings vm2 (h2)" pings_from vm1 "${FIXED[vm2]}"
check "vm2 (h2) pings vm1 (now on h3)" pings_from vm2 "${FIXED[vm1]}"
check "h2 no longer pins vm1's MAC to itself: h2 sends it to h3" bash -c \
    "nsenter --net=/run/netns/$(host_ns 2) bridge fdb show dev vx-${net1:0:11} | grep -q '^$(os port list --server vm1 -f value -c 'MAC Address') dst 10.98.0.13 '"

check "a marker on vm3's disk" mark vm3 stayed-with-vm3
check "server migrate --host h2 vm3" os --os-compute-api-version 2.56 server migrate --host h2 vm3
wait_for "vm3 waits in VERIFY_RESIZE" 240 status_is vm3 VERIFY_RESIZE
check "vm3 is on h2" host_is vm3 h2
check "server resize revert vm3" os server resize revert vm3
wait_for "vm3 is ACTIVE" 120 status_is vm3 ACTIVE
check "vm3 is back on h3" host_is vm3 h3
wait_for "h2 removed its copy of vm3" 60 gone_from h2 "$vm3_id"
wait_for "vm3 answers SSH on its floating IP again" 240 on_vm vm3 true
wait_for "vm3's disk is the one it had (the marker)" 60 marker_is vm3 stayed-with-vm3
check "h3 kept vm3's qemu disk through the revert (not made anew)" bash -c \
    "! grep -q 'removing an instance the control plane doesn.t know.*$vm3_id' '$base/h3.log'"
check_eq "server migration list: vm1's confirmed, vm3's reverted" "confirmed $vm1_id|reverted $vm3_id" \
    "$(os server migration list -f value -c 'Server UUID' -c Status 2>&1 | sort | paste -sd'|')"

# Live migration: vm2 moves from h2 to h3 while it runs, with a ping every
# 0.2 s to its floating IP and an SSH session open through it.
vm2_id=$(id_of vm2)
# (Started by nsenter itself, not through a function, so $! is their pid.)
nsenter --net="/run/netns/$nn" ssh "${ssh_opts[@]}" "cloud@${FIP[vm2]}" 'i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo "tick $i $(hostname)"; sleep 1; done' \
    >"$scratch/live-ssh.out" 2>&1 &
live_ssh=$!
nsenter --net="/run/netns/$nn" ping -i 0.2 -W 1 -w 400 "${FIP[vm2]}" >"$scratch/live-ping.out" 2>&1 &
live_ping=$!
ticking() { [ "$(grep -c '^tick' "$scratch/live-ssh.out")" -ge "$1" ]; }
wait_for "the SSH session through vm2's floating IP is running" 30 ticking 2
os_live() { os --os-compute-api-version 2.30 "$@"; }
check_fails "live migration to its own host is refused" "to current host" \
    os_live server migrate --live-migration --host h2 vm2
check "server migrate --live-migration --host h3 vm2" os_live server migrate --live-migration --host h3 vm2
live_done() { host_is vm2 h3 && status_is vm2 ACTIVE; }
wait_for "vm2 runs on h3" 300 live_done
ticks=$(grep -c '^tick' "$scratch/live-ssh.out")
wait_for "the SSH session opened before the migration goes on after it" 30 ticking $((ticks + 3))
check "and is still connected" kill -0 "$live_ssh"
kill "$live_ssh" 2>/dev/null; wait "$live_ssh" 2>/dev/null
kill -INT "$live_ping" 2>/dev/null; wait "$live_ping" 2>/dev/null
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$scratch/live-ping.out")
got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$scratch/live-ping.out")
lost=$((${sent:-0} - ${got:-0}))
log "pings to vm2 during the live migration: $sent sent, $got answered, $lost lost"
log "$(grep -a 'live migration: memory and disk moved' "$ctl_state.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -n 1)"
check "pings lost during the live migration: $lost (at most 3)" test "${sent:-0}" -gt 0 -a "$lost" -le 3
check_eq "vm2's disk came along (its page still answers)" vm2 "$(on_vm vm2 wget -q -O - http://127.0.0.1:8080/who 2>&1)"
check "vm2 (now on h3) pings vm4 (h3)" pings_from vm2 "${FIXED[vm4]}"
check "vm1 (h3) pings vm2" pings_from vm1 "${FIXED[vm2]}"
wait_for "h2 removed its copy of vm2" 60 gone_from h2 "$vm2_id"
check_eq "server migration list: vm2's live migration completed" "completed $vm2_id" \
    "$(os server migration list -f value -c Status -c 'Server UUID' 2>&1 | grep "$vm2_id")"

# Everything goes.
made_ns=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["namespaces"]))' "$base/h1/dataplane/ledger.json" 2>/dev/null)
check "the network node made the routers' and DHCP namespaces" bash -c "echo '$made_ns' | grep -q qrouter- && echo '$made_ns' | grep -q qdhcp-"
check "p2: server delete" p2 server delete --wait other2 other3
check "p2: floating ip delete" p2 floating ip delete "$p2_fip"
check "p2: port delete" p2 port delete other2-port other3-port
check "p2: router unset gateway" p2 router unset --external-gateway p2_router
check "p2: router remove subnet" p2 router remove subnet p2_router p2_subnet
check "p2: router delete" p2 router delete p2_router
check "p2: network delete" p2 network delete p2_net
check "p2: security group delete" p2 security group delete p2ssh
check "server delete (all four)" os server delete --wait $VMS
for vm in $VMS; do os floating ip delete "${FIP[$vm]}" >/dev/null 2>&1; done
check "router unset gateway" os router unset --external-gateway user1_router
check "router remove subnet" os router remove subnet user1_router user1_subnet
check "router delete" os router delete user1_router
check "network delete" os network delete user1_net ext_net
check_eq "no port is left" 0 "$(in_ctl psql "$pg_url" -tAc 'SELECT count(*) FROM ports' 2>&1)"
left_links() { on_host "$1" ip -br link | awk '{print $1}' | cut -d@ -f1 | grep -E '^(tap|brq|vx-|dh-)'; }
left_ns() { local ns; for ns in $made_ns; do ip netns list | grep -q "^$ns\b" && echo "$ns"; done; }
for i in 1 2 3; do
    none_left() { [ -z "$(left_links "$1")" ]; }
    wait_for "h$i: no VXLAN device, bridge or tap is left" 30 none_left "$i"
    check_eq "h$i: no ferrostack nft table is left" "" "$(on_host "$i" nft list tables 2>&1 | grep ferrostack)"
    ledger_empty() { [ "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",",":")))' "$base/h$1/dataplane/ledger.json")" = '{"links":[],"namespaces":[],"tables":false}' ]; }
    wait_for "h$i: the dataplane's ledger is empty" 30 ledger_empty "$i"
done
no_ns_left() { [ -z "$(left_ns)" ]; }
wait_for "no router or DHCP namespace is left" 30 no_ns_left
check_eq "no dnsmasq is left on h1" "" "$(ls "$(cat "$base/h1/dataplane/run-dir")"/dhcp/*/pid 2>/dev/null)"
finish
