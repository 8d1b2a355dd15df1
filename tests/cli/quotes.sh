#!/usr/bin/env bash
# The seed's application deployed by its Ansible playbook
# (apps/quotes/deploy/site.yml, openstack.cloud) on ferrostack, with real
# QEMU, HAProxy and the Linux dataplane inside a sandbox network namespace
# this script makes and removes. The quotes image (Debian, PostgreSQL,
# nginx, the quotes API) boots `database`, `api-1` and `api-2`, configured
# by user data; an AwesomeAPI stand-in in the sandbox plays the internet.
# With lb=octavia (a managed load balancer) and then lb=nginx (the seed's
# nginx server; FERRO_QUOTES_MODES picks the modes, CI runs octavia only), through the entry point's floating IP: register, log in,
# consult; 20 requests alternate between api-1 and api-2; api-1 stopped,
# every request still succeeds (and, managed, its member goes ERROR, then
# ONLINE again once started). The second run reports changed=0, and
# state=absent leaves no server, port, floating IP, load balancer,
# namespace or HAProxy.
. "$(dirname "$0")/lib.bash"
state="$FERRO_WORK/cli-quotes"
scratch="$FERRO_WORK/quotes-files"
box="fsqt-$$"
deploy="$(cd "$(dirname "$0")/../../apps/quotes/deploy" && pwd)"
rm -rf "$scratch" && mkdir -p "$scratch"
[ -n "${FERRO_QUOTES_IMAGE:-}" ] || { echo "FERRO_QUOTES_IMAGE is not set (scripts/test builds it)" >&2; exit 1; }
[ -n "${FERRO_ANSIBLE_VENV:-}" ] || { echo "FERRO_ANSIBLE_VENV is not set (scripts/test makes it)" >&2; exit 1; }
standin_pid=

cleanup() {
    [ -n "$standin_pid" ] && kill "$standin_pid" 2>/dev/null
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

# What an operator prepares once: the image, a flavor, the external network.
check "image create quotes-debian" os image create --public --container-format bare --disk-format qcow2 \
    --file "$FERRO_QUOTES_IMAGE" quotes-debian
check "flavor create m1.small" os flavor create --vcpus 1 --ram 512 --disk 3 m1.small
check "external network" os network create --external --share --provider-network-type flat --provider-physical-network physnet1 ext_net
check "external subnet" os subnet create --network ext_net --no-dhcp --gateway 172.16.0.1 --subnet-range 172.16.0.0/20 \
    --allocation-pool start=172.16.7.0,end=172.16.8.255 ext_subnet
ssh-keygen -q -t ed25519 -N '' -f "$scratch/id_ed25519"

# The internet's quote service, played inside the sandbox on the external network's gateway.
in_box python3 "$deploy/awesomeapi-standin.py" --listen 172.16.0.1:8000 --key the-key >"$scratch/standin.log" 2>&1 &
standin_pid=$!

play() { # play LOG EXTRA_VARS...
    local log=$1; shift
    in_box env OS_CLIENT_CONFIG_FILE="$state/clouds.yaml" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP="$scratch/tmp" \
        ANSIBLE_HOME="$scratch/home" ANSIBLE_PYTHON_INTERPRETER="$FERRO_ANSIBLE_VENV/bin/python" \
        "$FERRO_ANSIBLE_VENV/bin/ansible-playbook" -i localhost, -c local "$deploy/site.yml" \
        -e cloud=ferrostack -e "public_key_file=$scratch/id_ed25519.pub" -e "secrets_dir=$scratch/secrets" \
        -e awesome_api_url=http://172.16.0.1:8000 -e awesome_api_key=the-key -e wait_timeout=900 "$@" >"$scratch/$log.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then grep -A4 -E '^fatal|^failed' "$scratch/$log.log" | head -30 | sed 's/^/       /' >&2; fi
    return $rc
}
recap() { grep -E '^localhost +:' "$scratch/$1.log"; }
changed_tasks() { grep -B1 -E '^changed' "$scratch/$1.log" | grep -E '^TASK' | sed 's/^/       /' >&2; }

http() { in_box curl -sS --max-time 15 "$@"; }
served_by() { # served_by URL TOKEN: who answered /consultar
    http -o /dev/null -D - -H "Authorization: Bearer $2" "$1/consultar" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}'
}
answers() { local i out=; for i in $(seq 1 "$1"); do out+="$(served_by "$2" "$3")"$'\n'; done; printf '%s' "$out"; }

exercise() { # exercise MODE ENTRY_IP: the app through its entry point
    local mode=$1 url="http://$2" email="ana.$1@example.com" jwt out code
    wait_for "$mode: the API answers through the entry point (servers booted, PostgreSQL up)" 900 \
        bash -c "ip netns exec $box curl -sf --max-time 10 $url/health"
    log "$mode: deploy time: the playbook took $((PLAYED_AT - DEPLOY_STARTED)) s; the app answered $((SECONDS - DEPLOY_STARTED)) s after it began"
    out=$(http -w '\n%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"nome\":\"Ana\",\"email\":\"$email\",\"senha\":\"correct horse\"}" "$url/registrar")
    check_eq "$mode: POST /registrar is 201" "201" "$(tail -1 <<<"$out")"
    code=$(http -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"nome\":\"Ana\",\"email\":\"$email\",\"senha\":\"correct horse\"}" "$url/registrar")
    check_eq "$mode: the same email again is 409" "409" "$code"
    code=$(http -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"senha\":\"wrong horse\"}" "$url/login")
    check_eq "$mode: a wrong password is 401" "401" "$code"
    out=$(http -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"senha\":\"correct horse\"}" "$url/login")
    jwt=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["jwt"])' <<<"$out" 2>/dev/null)
    check "$mode: POST /login gives a JWT" test -n "$jwt"
    code=$(http -o /dev/null -w '%{http_code}' "$url/consultar")
    check_eq "$mode: GET /consultar without a token is 403" "403" "$code"
    out=$(http -H "Authorization: Bearer $jwt" "$url/consultar")
    check_eq "$mode: GET /consultar gives USD-BRL and EUR-BRL from the stand-in" "5.4 6.1 upstream" \
        "$(python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["quotes"]["USD-BRL"]["bid"][:3], b["quotes"]["EUR-BRL"]["bid"][:3], b["source"])' <<<"$out" 2>&1)"
    twenty=$(answers 20 "$url" "$jwt")
    check_eq "$mode: 20 requests, 10 answered by api-1 and 10 by api-2" "10 api-1|10 api-2" \
        "$(printf '%s' "$twenty" | sort | uniq -c | awk '{print $1, $2}' | paste -sd'|')"
    JWT=$jwt
}

member_is() { [ "$(os loadbalancer member show quotes-api "$1" -f value -c operating_status 2>/dev/null)" = "$2" ]; }
status_is() { [ "$(os server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }

stop_api_1() { # stop_api_1 MODE ENTRY_IP
    local mode=$1 url="http://$2" during
    check "$mode: server stop api-1" os server stop api-1
    local stopped_at=$SECONDS
    during=$(answers 10 "$url" "$JWT")
    check_eq "$mode: with api-1 stopping, all 10 requests succeed" "10" "$(printf '%s' "$during" | grep -c -x -e api-1 -e api-2)"
    wait_for "$mode: api-1 is SHUTOFF" 120 status_is api-1 SHUTOFF
    if [ "$mode" = octavia ]; then
        wait_for "octavia: api-1's member is ERROR (monitor: delay 3 s x 2 failures)" 60 member_is api-1 ERROR
        log "api-1 marked ERROR $((SECONDS - stopped_at)) s after the stop"
        check_eq "octavia: the pool is DEGRADED" "DEGRADED" "$(os loadbalancer pool show quotes-api -f value -c operating_status)"
    fi
    check_eq "$mode: only api-2 answers, every time" "api-2" "$(answers 6 "$url" "$JWT" | sort -u | paste -sd' ')"
    check "$mode: server start api-1" os server start api-1
    if [ "$mode" = octavia ]; then
        wait_for "octavia: api-1 rejoins (ONLINE)" 600 member_is api-1 ONLINE
    else
        wait_for "nginx: api-1 is ACTIVE again" 120 status_is api-1 ACTIVE
    fi
    wait_for "$mode: both answer again" 600 bash -c "[ \"\$(ip netns exec $box curl -s -o /dev/null -D - -H 'Authorization: Bearer $JWT' $url/consultar $url/consultar $url/consultar $url/consultar | tr -d '\r' | awk -F': ' 'tolower(\$1)==\"x-served-by\"{print \$2}' | sort -u | paste -sd' ')\" = 'api-1 api-2' ]"
}

nothing_left() { # nothing_left MODE
    local mode=$1
    check_eq "$mode absent: no server" "" "$(os server list -f value -c Name)"
    check_eq "$mode absent: no port" "" "$(os port list -f value -c ID)"
    check_eq "$mode absent: no floating IP" "" "$(os floating ip list -f value -c ID)"
    check_eq "$mode absent: no load balancer" "" "$(os loadbalancer list -f value -c id)"
    check_eq "$mode absent: no router, network (but ext_net) or security group of the deploy" "" \
        "$(os router list -f value -c Name; os network list -f value -c Name | grep -v '^ext_net$'; os security group list -f value -c Name | grep -v '^default$')"
    local run_dir; run_dir=$(cat "$state/dataplane/run-dir")
    check_eq "$mode absent: no HAProxy pid file left" "" "$(ls "$run_dir/lb" 2>/dev/null)"
    check_eq "$mode absent: no load-balancer or router namespace left" "" "$(ip netns list | grep -oE '^(qlbaas|qrouter)-[0-9a-f-]+' | while read -r n; do grep -q "\"$n\"" "$state/dataplane/ledger.json" 2>/dev/null && echo "$n"; done)"
}

# --- lb=octavia: the managed load balancer -----------------------------------
octavia() {
DEPLOY_STARTED=$SECONDS
check "octavia: the playbook's first run succeeds" play octavia-1 -e lb=octavia
PLAYED_AT=$SECONDS
check "octavia: it changed things, failed nothing" bash -c "grep -E '^localhost +:' '$scratch/octavia-1.log' | grep -q ' failed=0 ' && ! grep -E '^localhost +:' '$scratch/octavia-1.log' | grep -q ' changed=0 '"
vip_port=$(os loadbalancer show quotes-lb -f value -c vip_port_id 2>/dev/null)
entry=$(os floating ip list --port "$vip_port" -f value -c 'Floating IP Address' 2>/dev/null)
check "octavia: the VIP has a floating IP ($entry)" test -n "$entry"
exercise octavia "$entry"
wait_for "octavia: both members ONLINE" 120 bash -c "[ \"\$(ip netns exec $box openstack loadbalancer member list quotes-api -f value -c operating_status | sort -u)\" = ONLINE ]"
check "octavia: the second run succeeds" play octavia-2 -e lb=octavia
check "octavia: second run: changed=0 failed=0" bash -c "grep -E '^localhost +:' '$scratch/octavia-2.log' | grep -qE ' changed=0 .* failed=0 '"
recap octavia-2 | grep -q ' changed=0 ' || changed_tasks octavia-2
stop_api_1 octavia "$entry"
check "octavia: state=absent succeeds" play octavia-absent -e lb=octavia -e state=absent
nothing_left octavia
}

# --- lb=nginx: the seed's own nginx server -----------------------------------
nginx() {
DEPLOY_STARTED=$SECONDS
check "nginx: the playbook's first run succeeds" play nginx-1 -e lb=nginx
PLAYED_AT=$SECONDS
entry=$(os server show load-balancer -f json -c addresses 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"]["quotes-net"][1])' 2>/dev/null)
check "nginx: the load-balancer server has a floating IP ($entry)" test -n "$entry"
exercise nginx "$entry"
check "nginx: the second run succeeds" play nginx-2 -e lb=nginx
check "nginx: second run: changed=0 failed=0" bash -c "grep -E '^localhost +:' '$scratch/nginx-2.log' | grep -qE ' changed=0 .* failed=0 '"
recap nginx-2 | grep -q ' changed=0 ' || changed_tasks nginx-2
stop_api_1 nginx "$entry"
check "nginx: state=absent succeeds" play nginx-absent -e lb=nginx -e state=absent
nothing_left nginx
}

# FERRO_QUOTES_MODES: the modes to deploy, in order (CI runs octavia only).
modes=${FERRO_QUOTES_MODES:-octavia nginx}
for mode in $modes; do
    case $mode in
        octavia) octavia ;;
        nginx) nginx ;;
        *) echo "unknown mode in FERRO_QUOTES_MODES: $mode" >&2; exit 2 ;;
    esac
done
check "a second state=absent changes nothing" play absent-again -e "lb=${mode}" -e state=absent
check "  (changed=0)" bash -c "grep -E '^localhost +:' '$scratch/absent-again.log' | grep -qE ' changed=0 .* failed=0 '"
finish
