#!/usr/bin/env bash
# A managed load balancer (Octavia's API through python-octaviaclient) in
# front of two real instances, with real QEMU, HAProxy and the Linux
# dataplane, inside a sandbox network namespace this script makes and
# removes: a VIP on the tenant subnet with a floating IP, an HTTP listener,
# a round-robin pool of api-1 and api-2 with an HTTP health monitor.
# Requests through the floating IP alternate between the two; with api-1
# stopped every request still succeeds and the monitor marks it ERROR;
# started again it rejoins. HAProxy killed comes back. L7 policies route
# /v2/ to a pool of its own, redirect an old host name and refuse a header;
# a download that started before a reload finishes whole. A
# certificate made here, stored in the key manager (python-barbicanclient)
# as a certificate container, serves HTTPS on a TERMINATED_HTTPS listener.
# Octavia's refusals, quotas, then a cascade delete that leaves no
# namespace, HAProxy or VIP port.
. "$(dirname "$0")/lib.bash"
state="$FERRO_WORK/cli-lb"
scratch="$FERRO_WORK/lb-files"
box="fslb-$$"
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

status_is() { [ "$(os server show "$1" -f value -c status 2>/dev/null)" = "$2" ]; }
member_is() { [ "$(os loadbalancer member show apis "$1" -f value -c operating_status 2>/dev/null)" = "$2" ]; }
lb_active() { [ "$(os loadbalancer show lb1 -f value -c provisioning_status 2>/dev/null)" = ACTIVE ]; }

check "image create" os image create --public --container-format bare --disk-format qcow2 --file "$FERRO_TINY_IMAGE" tiny
check "flavor create" os flavor create --vcpus 1 --ram 256 --disk 1 m1.tiny
check "external network" os network create --external --share --provider-network-type flat --provider-physical-network physnet1 ext_net
check "external subnet" os subnet create --network ext_net --no-dhcp --gateway 172.16.0.1 --subnet-range 172.16.0.0/20 \
    --allocation-pool start=172.16.7.0,end=172.16.8.255 ext_subnet
check "tenant network" os network create app_net
check "tenant subnet" os subnet create --network app_net --subnet-range 10.50.0.0/24 app_subnet
check "router" os router create app_router
check "router add subnet" os router add subnet app_router app_subnet
check "router gateway" os router set app_router --external-gateway ext_net
check "the APIs' port is open" os security group rule create --proto tcp --dst-port 8080 default

# Each API instance serves its name on port 8080, at / and /v2/, and a
# slow page: 60 lines, one a second (user data runs as root).
for n in api-1 api-2; do
    cat >"$scratch/$n.sh" <<EOS
#!/bin/sh
mkdir -p /tmp/www/v2 /tmp/www/cgi-bin && echo $n >/tmp/www/index.html && echo $n >/tmp/www/v2/index.html
cat >/tmp/www/cgi-bin/slow <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
i=0
while [ \$i -lt 60 ]; do i=\$((i + 1)); echo "line \$i"; sleep 1; done
CGI
chmod 755 /tmp/www/cgi-bin/slow
httpd -p 8080 -h /tmp/www
EOS
    check "server create $n" os server create --image tiny --flavor m1.tiny --network app_net --user-data "$scratch/$n.sh" "$n"
done

check "loadbalancer create --wait" os loadbalancer create --name lb1 --vip-subnet-id app_subnet --wait
check_eq "it is ACTIVE" "ACTIVE" "$(os loadbalancer show lb1 -f value -c provisioning_status)"
check_eq "and ONLINE" "ONLINE" "$(os loadbalancer show lb1 -f value -c operating_status)"
check "listener create HTTP:80 --wait" os loadbalancer listener create --name http --protocol HTTP --protocol-port 80 --wait lb1
check "pool create ROUND_ROBIN --wait" os loadbalancer pool create --name apis --listener http --protocol HTTP \
    --lb-algorithm ROUND_ROBIN --wait
wait_for "api-1 is ACTIVE" 120 status_is api-1 ACTIVE
wait_for "api-2 is ACTIVE" 120 status_is api-2 ACTIVE
addr() { os server show "$1" -f json -c addresses | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"]["app_net"][0])'; }
ip1=$(addr api-1); ip2=$(addr api-2)
check "member create api-1 --wait" os loadbalancer member create --name api-1 --address "$ip1" --protocol-port 8080 --wait apis
check "member create api-2 --wait" os loadbalancer member create --name api-2 --address "$ip2" --protocol-port 8080 --wait apis
check "healthmonitor create HTTP --wait" os loadbalancer healthmonitor create --name web-check --type HTTP --url-path / \
    --delay 2 --timeout 1 --max-retries 2 --max-retries-down 2 --wait apis
wait_for "api-1 passes its health checks (ONLINE)" 120 member_is api-1 ONLINE
wait_for "api-2 passes its health checks (ONLINE)" 60 member_is api-2 ONLINE

vip_port=$(os loadbalancer show lb1 -f value -c vip_port_id)
FIP=$(os floating ip create -f value -c floating_ip_address ext_net)
check "floating ip set --port (the VIP's port)" os floating ip set --port "$vip_port" "$FIP"
get() { in_box curl -sS --max-time 10 "http://$FIP/"; }
wait_for "the floating IP answers through the load balancer" 60 get
answers() { local i out=; for i in $(seq 1 "$1"); do out+="$(get 2>&1)"$'\n'; done; printf '%s' "$out"; }
twenty=$(answers 20)
check_eq "20 requests: 10 answered by api-1, 10 by api-2" "10 api-1|10 api-2" \
    "$(printf '%s' "$twenty" | sort | uniq -c | awk '{print $1, $2}' | paste -sd'|')"
check_eq "round robin alternates" "" "$(printf '%s' "$twenty" | uniq -d)"

# api-1 stops: every request still succeeds, and its monitor marks it down.
check "server stop api-1" os server stop api-1
stopped_at=$SECONDS
during=$(answers 10)
check_eq "with api-1 stopping, every request succeeds" "10" "$(printf '%s' "$during" | grep -c -x -e api-1 -e api-2)"
wait_for "api-1 is ERROR in its pool" 60 member_is api-1 ERROR
log "api-1 marked ERROR $((SECONDS - stopped_at)) s after the stop (delay 2 s x 2 failures, plus the guest's shutdown)"
check_eq "only api-2 answers" "api-2" "$(answers 6 | sort -u)"
check_eq "the pool is DEGRADED" "DEGRADED" "$(os loadbalancer pool show apis -f value -c operating_status)"
check_eq "the status tree says so" "ERROR" \
    "$(os loadbalancer status show lb1 | python3 -c 'import json,sys; t=json.load(sys.stdin)["loadbalancer"]; print([m["operating_status"] for m in t["listeners"][0]["pools"][0]["members"] if m["name"]=="api-1"][0])')"
check "server start api-1" os server start api-1
wait_for "api-1 rejoins (ONLINE)" 120 member_is api-1 ONLINE
check_eq "both answer again" "api-1 api-2" "$(answers 6 | sort -u | paste -sd' ')"
check "stats show: connections counted" bash -c "[ \"\$(ip netns exec $box openstack loadbalancer stats show lb1 -f value -c total_connections)\" -gt 0 ]"

# HAProxy dies: the agent starts it again.
run_dir=$(cat "$state/dataplane/run-dir")
lb_id=$(os loadbalancer show lb1 -f value -c id)
master=$(cat "$run_dir/lb/$lb_id/pid")
check "HAProxy runs for lb1" grep -q "$run_dir/lb/$lb_id" "/proc/$master/cmdline"
kill -KILL "$master"
restarted() { local p; p=$(cat "$run_dir/lb/$lb_id/pid" 2>/dev/null) && [ "$p" != "$master" ] && [ -d "/proc/$p" ]; }
wait_for "a killed HAProxy is started again" 60 restarted
wait_for "and answers" 60 get

# L7: /v2/ goes to a pool of api-2 alone, while a slow download (the
# member writes a line a second for a minute) that started before the last
# change and its HAProxy reload goes on.
check "pool create v2 (no listener)" os loadbalancer pool create --name v2 --loadbalancer lb1 --protocol HTTP --lb-algorithm ROUND_ROBIN --wait
check "member create api-2 in v2 --wait" os loadbalancer member create --name api-2 --address "$ip2" --protocol-port 8080 --wait v2
check "l7policy create REDIRECT_TO_POOL --wait" os loadbalancer l7policy create --name to-v2 --action REDIRECT_TO_POOL --redirect-pool v2 --wait http
in_box curl -sS -N --max-time 180 -o "$scratch/slow.txt" -w '%{http_code}' "http://$FIP/cgi-bin/slow" >"$scratch/slow.code" 2>&1 &
download=$!
sleep 2
check "l7rule create PATH STARTS_WITH /v2/ --wait" os loadbalancer l7rule create --type PATH --compare-type STARTS_WITH --value /v2/ --wait to-v2
check_eq "the download has begun" "line 1" "$(head -n 1 "$scratch/slow.txt" 2>&1)"
check "and still runs after the reload" kill -0 "$download"
v2s() { local i; for i in 1 2 3 4 5 6; do in_box curl -sS --max-time 10 "http://$FIP/v2/"; done | sort -u | paste -sd' '; }
check_eq "/v2/ goes to api-2 alone (6 requests)" "api-2" "$(v2s)"
check_eq "/ still goes to both" "api-1 api-2" "$(answers 6 | sort -u | paste -sd' ')"
check "l7policy create REDIRECT_TO_URL 301 --wait" os loadbalancer l7policy create --name moved --action REDIRECT_TO_URL \
    --redirect-url https://new.example/ --redirect-http-code 301 --wait http
check "l7rule create HOST_NAME EQUAL_TO old.example --wait" os loadbalancer l7rule create --type HOST_NAME --compare-type EQUAL_TO --value old.example --wait moved
check_eq "a request for old.example is redirected" "301 https://new.example/" \
    "$(in_box curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: old.example' --max-time 10 "http://$FIP/")"
check "l7policy create REJECT --wait" os loadbalancer l7policy create --name no-bots --action REJECT --position 1 --wait http
check "l7rule create HEADER X-Bot EQUAL_TO yes --wait" os loadbalancer l7rule create --type HEADER --key X-Bot --compare-type EQUAL_TO --value yes --wait no-bots
check_eq "a request with X-Bot: yes is refused" "403" \
    "$(in_box curl -sS -o /dev/null -w '%{http_code}' -H 'X-Bot: yes' --max-time 10 "http://$FIP/")"
check_eq "the policies, by position" "no-bots 1|to-v2 2|moved 3" \
    "$(os loadbalancer l7policy list -f value -c name -c position --sort-column position | awk '{print $1, $2}' | paste -sd'|')"
check_fails "deleting a pool a policy sends to" "in use by L7 policy" os loadbalancer pool delete v2
check "l7policy delete to-v2" os loadbalancer l7policy delete to-v2
wait_for "the load balancer applies it" 60 lb_active
check_eq "/v2/ goes to both again" "api-1 api-2" "$(v2s)"
check "pool delete v2" os loadbalancer pool delete v2
wait_for "the load balancer applies it" 60 lb_active

# TERMINATED_HTTPS with a certificate from the key manager.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=www.example -addext subjectAltName=DNS:www.example \
    -keyout "$scratch/tls.key" -out "$scratch/tls.crt" 2>/dev/null
cert_ref=$(os secret store --name www-cert --payload-content-type text/plain --payload "$(cat "$scratch/tls.crt")" -f value -c "Secret href")
key_ref=$(os secret store --name www-key --payload-content-type text/plain --payload "$(cat "$scratch/tls.key")" -f value -c "Secret href")
check "secret store: the certificate and its key" test -n "$cert_ref" -a -n "$key_ref"
check_eq "secret get --payload gives the certificate back" "$(cat "$scratch/tls.crt")" "$(os secret get --payload -f value -c Payload "$cert_ref")"
container_ref=$(os secret container create --name www --type certificate --secret "certificate=$cert_ref" --secret "private_key=$key_ref" -f value -c "Container href")
check "secret container create --type certificate" test -n "$container_ref"
check "listener create TERMINATED_HTTPS:443 --wait" os loadbalancer listener create --name https --protocol TERMINATED_HTTPS \
    --protocol-port 443 --default-tls-container-ref "$container_ref" --wait lb1
check "pool create for it --wait" os loadbalancer pool create --name tls-apis --listener https --protocol HTTP --lb-algorithm ROUND_ROBIN --wait
check "member create api-2 in it --wait" os loadbalancer member create --address "$ip2" --protocol-port 8080 --wait tls-apis
https_get() { in_box curl -sS --max-time 10 --cacert "$scratch/tls.crt" --resolve "www.example:443:$FIP" https://www.example/; }
wait_for "HTTPS through the floating IP, verified against the certificate" 60 https_get
check_eq "and api-2 answers it" "api-2" "$(https_get)"
check_fails "a TERMINATED_HTTPS listener without a certificate" "needs a default_tls_container_ref" \
    os loadbalancer listener create --protocol TERMINATED_HTTPS --protocol-port 8443 lb1
check_fails "one whose certificate has no key" "no private key" \
    os loadbalancer listener create --protocol TERMINATED_HTTPS --protocol-port 8443 --default-tls-container-ref "$cert_ref" lb1

wait "$download"
check_eq "the download that ran through the reloads finished whole (200, 60 lines)" "200 60 line 60" \
    "$(cat "$scratch/slow.code") $(wc -l <"$scratch/slow.txt") $(tail -n 1 "$scratch/slow.txt")"

# Octavia's refusals change nothing.
check "a network no router reaches" os network create lone_net
check "its subnet" os subnet create --network lone_net --subnet-range 10.60.0.0/24 lone_subnet
check_fails "a member on a subnet the VIP can't reach" "not reachable" \
    os loadbalancer member create --address 10.60.0.5 --protocol-port 80 --subnet-id lone_subnet apis
check_fails "a listener port out of range" "65535" os loadbalancer listener create --protocol TCP --protocol-port 70000 lb1
check_fails "a second listener on port 80" "already using protocol_port 80" os loadbalancer listener create --protocol TCP --protocol-port 80 lb1
check_fails "deleting a load balancer with listeners, without --cascade" "it has children" os loadbalancer delete lb1
check_eq "still two members" "2" "$(os loadbalancer member list apis -f value -c id | wc -l)"

# Quotas: unlimited by default; past the one an admin sets, Octavia's 403.
check_eq "quota defaults show: no limit" "-1" "$(os loadbalancer quota defaults show -f value -c load_balancer)"
check "quota set --loadbalancer 1 (the admin project)" os loadbalancer quota set --loadbalancer 1 admin
check_eq "quota show says 1" "1" "$(os loadbalancer quota show admin -f value -c load_balancer)"
check_fails "a second load balancer past the quota" "Quota has been met for resources: Load Balancer" \
    os loadbalancer create --name lb2 --vip-subnet-id app_subnet
check_fails "and none was made" "Unable to locate lb2" os loadbalancer show lb2
check "quota reset" os loadbalancer quota reset admin
check_eq "no limit again" "-1" "$(os loadbalancer quota show admin -f value -c load_balancer)"

ns="qlbaas-$lb_id"
check "loadbalancer delete --cascade --wait" os loadbalancer delete --cascade --wait lb1
check_fails "it is gone" "Unable to locate lb1" os loadbalancer show lb1
check_fails "its VIP port is gone" "No Port found" os port show "$vip_port"
ns_gone() { ! ip netns list | grep -q "^$ns\b"; }
wait_for "its namespace is gone" 30 ns_gone
no_haproxy() { [ ! -e "$run_dir/lb/$lb_id/pid" ] && [ ! -d "/proc/$(cat "$run_dir/lb/$lb_id/pid" 2>/dev/null || echo none)" ]; }
wait_for "no HAProxy runs for it" 30 no_haproxy
check "floating ip delete" os floating ip delete "$FIP"
check "secret container delete" os secret container delete "$container_ref"
check "secret delete (the certificate)" os secret delete "$cert_ref"
check "secret delete (the key)" os secret delete "$key_ref"
check "server delete" os server delete --wait api-1 api-2
finish
