# SPDX-License-Identifier: Apache-2.0
# Shared by bench/kbs_handshake.sh and bench/kbs_ab.sh: the keys and one cloister-kbs as both
# measure it (loopback, insecure HTTP, worker_count = 2, P-256 token key, sample TEE, one
# 32-byte resource at bench/key/one). Source it after setting T (a temp folder) and PIDS="".
#
#   kbs_bench_keys               admin key pair, token key, the secret, in $T
#   kbs_bench_start NAME BUILD [STORE]
#                                starts BUILD's cloister-kbs with STORE (LocalFs, the
#                                default, or Memory), waits for /healthz, uploads the secret;
#                                sets URL_NAME and PID_NAME and adds the pid to PIDS; the log
#                                is $T/NAME.log, quiet (-q) unless KBS_BENCH_FLAGS says otherwise

kbs_bench_keys() {
	openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
	openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
	openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$T/as.key"
	head -c 32 /dev/urandom > "$T/secret"
}

kbs_bench_start() {
	_store=${3:-LocalFs}
	case $_store in
	LocalFs) _store_cfg="storage_type = \"LocalFs\"
[storage_backend.backends.local_fs]
dir_path = \"$T/store-$1\"" ;;
	Memory) _store_cfg='storage_type = "Memory"' ;;
	*) echo "store $_store: LocalFs or Memory" >&2; return 2 ;;
	esac
	_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat > "$T/$1.toml" <<CFG
[http_server]
sockets = ["127.0.0.1:$_port"]
insecure_http = true
worker_count = 2
[admin]
type = "Simple"
[[admin.personas]]
id = "bench"
public_key_path = "$T/admin.pub"
[attestation_service]
type = "coco_as_builtin"
allow_sample_tee_insecure = true
max_sessions = 1000000
[attestation_service.attestation_token_broker.signer]
key_path = "$T/as.key"
[storage_backend]
$_store_cfg
CFG
	# shellcheck disable=SC2086 # flags, split on purpose
	"$2/src/cmd/cloister-kbs" ${KBS_BENCH_FLAGS--q} -c "$T/$1.toml" > "$T/$1.log" 2>&1 &
	_pid=$!
	PIDS="$PIDS $_pid"
	_i=0
	until curl -fsS "http://127.0.0.1:$_port/healthz" >/dev/null 2>&1; do
		_i=$((_i + 1))
		if [ $_i -ge 100 ]; then echo "cloister-kbs $1 did not start:" >&2; cat "$T/$1.log" >&2; return 1; fi
		sleep 0.1
	done
	"$2/src/cmd/cloister" kbs set-resource --url "http://127.0.0.1:$_port" --admin-key "$T/admin.key" \
		--path bench/key/one --file "$T/secret" > /dev/null
	eval "URL_$1=http://127.0.0.1:$_port PID_$1=$_pid"
}
