#!/usr/bin/env bash
# Many hosts, one cloud: `ferrostack controller` on PostgreSQL and three
# hosts joined with `ferrostack host add` tokens and `ferrostack agent
# --join`, each in a network namespace of its own on an underlay bridge that
# this script makes (inside a namespace too), with real QEMU. Through the
# unmodified openstack CLI: three hypervisors up, six servers spread over
# them and booted, a SIGKILLed agent's host going down and taking no new
# boots, a server of the down host evacuated to another, the restarted
# agent adopting its VMs (same qemu pids) and removing the evacuated one's
# stale copy, a reused
# token refused, and deletes that leave no qemu process, disk, tap or
# allocation on any host. Everything is removed by the names it was made with.
. "$(dirname "$0")/lib.bash"
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ -n "${FERRO_TINY_IMAGE:-}" ] || { echo "FERRO_TINY_IMAGE is not set (scripts/test builds it)" >&2; exit 1; }

tag=$$
under="fsmu-$tag"
ctl="fsmc-$tag"
base="$FERRO_WORK/multihost"
ctl_state="$base/controller"
pg="$base/pg"
mkdir -p "$base"
host_ns() { echo "fsm$1-$tag"; }
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
    for i in 1 2 3; do ferro_kill_vms "$base/h$i"; done
    "$repo/scripts/pg-test-server" stop "$pg" || true
    for i in 1 2 3; do ip netns del "$(host_ns "$i")" 2>/dev/null || true; done
    ip netns del "$ctl" 2>/dev/null || true
    ip netns del "$under" 2>/dev/null || true
}
trap cleanup EXIT

# The underlay: a bridge in a namespace of its own, and a veth leg from it
# to each machine's namespace (controller 10.97.0.1, host i 10.97.0.1i).
ip netns add "$under" && ip -n "$under" link set lo up \
    && ip -n "$under" link add br0 type bridge && ip -n "$under" link set br0 up || exit 1
add_machine() { # add_machine NS ADDRESS LEG
    ip netns add "$1" && ip -n "$1" link set lo up \
        && ip -n "$under" link add "$3" type veth peer name eth0 netns "$1" \
        && ip -n "$under" link set "$3" master br0 up \
        && ip -n "$1" addr add "$2/24" dev eth0 && ip -n "$1" link set eth0 up
}
add_machine "$ctl" 10.97.0.1 c0 || exit 1
for i in 1 2 3; do add_machine "$(host_ns "$i")" "10.97.0.1$i" "h$i" || exit 1; done
in_ctl() { nsenter --net="/run/netns/$ctl" "$@"; }
os() { in_ctl openstack "$@"; }

# The controller, with PostgreSQL beside it in its namespace.
pg_url=$(in_ctl "$repo/scripts/pg-test-server" start "$pg") || exit 1
nsenter --net="/run/netns/$ctl" "$FERRO_BIN" controller --state-dir "$ctl_state" --database-url "$pg_url" --bind 10.97.0.1 \
    --ephemeral-ports --bcrypt-cost 4 >>"$ctl_state.log" 2>&1 &
CTL_PID=$!
for _ in $(seq 1 200); do [ -f "$ctl_state/openrc" ] && break; sleep 0.05; done
[ -f "$ctl_state/openrc" ] || { cat "$ctl_state.log" >&2; exit 1; }
. "$ctl_state/openrc"
url=$(cat "$ctl_state/contract/url")
check_eq "a controller runs no host of its own" "" "$(os hypervisor list -f value -c 'Hypervisor Hostname' 2>&1)"

declare -A TOKEN=()
start_agent() { # start_agent I [--token T]
    local i=$1; shift
    nsenter --net="/run/netns/$(host_ns "$i")" "$FERRO_BIN" agent --join "$url" --state-dir "$base/h$i" \
        --host-name "h$i" "$@" >>"$base/h$i.log" 2>&1 &
    AGENT_PID[$i]=$!
}
for i in 1 2 3; do
    TOKEN[$i]=$(in_ctl "$FERRO_BIN" host add "h$i" --state-dir "$ctl_state" --database-url "$pg_url" 2>/dev/null)
    start_agent "$i" --token "${TOKEN[$i]}"
done
hosts_up() { [ "$(os hypervisor list -f value -c 'Hypervisor Hostname' -c State 2>/dev/null | sort | xargs)" = "$1" ]; }
wait_for "openstack hypervisor list shows h1, h2 and h3 up" 60 hosts_up "h1 up h2 up h3 up"
check "each host's certificate is from the cloud's CA" bash -c \
    "for i in 1 2 3; do openssl verify -CAfile '$ctl_state/contract/ca.pem' '$base/h'\$i/agent-contract/host.pem >/dev/null || exit 1; done"

check "image create tiny" os image create --public --container-format bare --disk-format qcow2 --file "$FERRO_TINY_IMAGE" tiny
check "flavor create m1.nano" os flavor create --vcpus 1 --ram 256 --disk 1 m1.nano
for n in 1 2 3 4 5 6; do
    check "server create vm$n" os server create --image tiny --flavor m1.nano --nic none "vm$n"
done
status_is() { [ "$(os server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }
console_has() { os console log show "$1" 2>/dev/null | grep -q "$2"; }
host_of() { os server show "$1" -f value -c OS-EXT-SRV-ATTR:host 2>/dev/null; }
for n in 1 2 3 4 5 6; do
    wait_for "vm$n is ACTIVE" 120 status_is "vm$n" ACTIVE
done
check_eq "the six servers are spread two per host" "2 h1 2 h2 2 h3" \
    "$(for n in 1 2 3 4 5 6; do host_of "vm$n"; done | sort | uniq -c | xargs)"
for n in 1 2 3 4 5 6; do
    id=$(os server show "vm$n" -f value -c id)
    wait_for "vm$n's console (from its host) shows it booted" 180 console_has "vm$n" "instance $id ready"
done
qemu_pids() { # the live qemu pids of host I, by its pid files
    local f pid
    for f in "$base/h$1"/instances/*/qemu.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        grep -qs "$(basename "$(dirname "$f")")" "/proc/$pid/cmdline" && echo "$pid"
    done | sort | xargs
}
for i in 1 2 3; do
    check_eq "host h$i runs two qemu processes" 2 "$(qemu_pids "$i" | wc -w)"
done

# An agent killed outright: its host goes down, new boots go elsewhere.
before=$(qemu_pids 3)
kill -KILL "${AGENT_PID[3]}"; wait "${AGENT_PID[3]}" 2>/dev/null
unset 'AGENT_PID[3]'
state_of() { [ "$(os compute service list --host "h$1" -f value -c State 2>/dev/null)" = "$2" ]; }
wait_for "h3 is down in compute service list within 60 s (+ a heartbeat)" 75 state_of 3 down
check_eq "hypervisor list agrees" "h1 up h2 up h3 down" \
    "$(os hypervisor list -f value -c 'Hypervisor Hostname' -c State 2>&1 | sort | xargs)"
check "server create vm7 while h3 is down" os server create --image tiny --flavor m1.nano --nic none --wait vm7
check "vm7 went to a host that is up" bash -c "case '$(host_of vm7)' in h1|h2) ;; *) exit 1;; esac"
check_eq "h3's guests kept running without their agent" "$before" "$(qemu_pids 3)"
on_h1=$(for n in 1 2 3 4 5 6; do [ "$(host_of "vm$n")" = h1 ] && echo "vm$n"; done | head -n1)
check_fails "evacuate refuses a server whose host is up" "still in use" os server evacuate "$on_h1"
on_h3=$(for n in 1 2 3 4 5 6; do [ "$(host_of "vm$n")" = h3 ] && echo "vm$n"; done | head -n1)
evac_id=$(os server show "$on_h3" -f value -c id)
check "server evacuate $on_h3 (its host h3 is down)" os server evacuate "$on_h3"
rebuilt_elsewhere() { status_is "$on_h3" ACTIVE && case "$(host_of "$on_h3")" in h1|h2) ;; *) return 1;; esac; }
wait_for "$on_h3 is rebuilt and ACTIVE on another host" 120 rebuilt_elsewhere
wait_for "the evacuated $on_h3 boots there" 180 console_has "$on_h3" "instance $evac_id ready"

# Restarted (no token needed any more), the agent adopts its VMs.
evac_pid=$(cat "$base/h3/instances/$evac_id/qemu.pid" 2>/dev/null)
kept=$(for p in $before; do [ "$p" != "$evac_pid" ] && echo "$p"; done | xargs)
start_agent 3
wait_for "h3 is up again" 60 state_of 3 up
gone_from_h3() { [ ! -e "$base/h3/instances/$evac_id" ] && ! grep -qs "$evac_id" "/proc/$evac_pid/cmdline"; }
wait_for "back up, h3 removes its stale copy of the evacuated server (qemu and disk)" 60 gone_from_h3
check_eq "h3's other VM was adopted: the same qemu pid" "$kept" "$(qemu_pids 3)"
for n in 1 2 3 4 5 6; do [ "$(host_of "vm$n")" = h3 ] && check_eq "vm$n on h3 is still ACTIVE" ACTIVE "$(os server show "vm$n" -f value -c status 2>&1)"; done

# Joining again with a used token, or a made-up one, gets nothing.
check_fails "a used join token is refused" "already used" \
    nsenter --net="/run/netns/$(host_ns 1)" "$FERRO_BIN" agent --join "$url" --token "${TOKEN[1]}" \
    --state-dir "$base/again" --host-name h1 --agent-port 0
check_fails "a made-up token is refused" "not valid" \
    nsenter --net="/run/netns/$(host_ns 1)" "$FERRO_BIN" agent --join "$url" --token "guess.${TOKEN[1]#*.}" \
    --state-dir "$base/again" --host-name h1 --agent-port 0
check_eq "the refused tries left no certificate" "" "$(ls "$base/again/agent-contract" 2>/dev/null)"
check "ferrostack host list shows three hosts up and in sync" bash -c \
    "[ \"\$(nsenter --net=/run/netns/$ctl '$FERRO_BIN' host list --state-dir '$ctl_state' --database-url '$pg_url' | awk 'NR>1 && \$2==\"up\" && \$4==\"ok\"' | wc -l)\" = 3 ]"

# Deletes leave nothing on any host.
check "server delete --wait (all seven)" os server delete --wait vm1 vm2 vm3 vm4 vm5 vm6 vm7
check_eq "no server is left" "" "$(os server list -f value -c ID 2>&1)"
for i in 1 2 3; do
    check_eq "no qemu is left on h$i" "" "$(qemu_pids "$i")"
    check_eq "no instance files are left on h$i" 0 "$(find "$base/h$i/instances" -mindepth 1 2>/dev/null | wc -l)"
    check_eq "no tap is left on h$i" "" "$(ip -n "$(host_ns "$i")" -o link show type tun 2>&1)"
done
check_eq "no allocation is left" 0 "$(in_ctl psql "$pg_url" -tAc 'SELECT count(*) FROM allocations' 2>&1)"
check_eq "no port is left" 0 "$(in_ctl psql "$pg_url" -tAc 'SELECT count(*) FROM ports' 2>&1)"
finish
