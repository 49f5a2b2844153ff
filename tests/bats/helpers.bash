# shellcheck shell=bash
# Shared helpers for the bats suites of hpcs-for-luks.
#
# Load from a .bats file with `load helpers`.  Needs bats-core >= 1.8, curl
# and jq.  Add new helpers in a section of their own at the end of this file,
# with a header comment like the ones below; keep helper names prefixed by
# their section (emu_*, ...), and keep this file free of side effects beyond
# setting defaults.
#
# ---------------------------------------------------------------------------
# Key Protect emulator (tests/emulator/kp-emulator, see its README.md)
#
#   emulator_start [ARGS...]
#       Start the emulator in the background on a free port and wait (up to
#       10 s) until it listens.  ARGS go to kp-emulator (e.g. --token-ttl 2,
#       --latency-ms 100; not --port-file).  With --state-dir DIR among ARGS
#       that directory is used, e.g. to restart on the same state:
#           emulator_stop; emulator_start --state-dir "$EMU_DIR"
#       otherwise a fresh directory under $BATS_TEST_TMPDIR.
#       Passes --api-key "$EMU_API_KEY" and --instance-id "$EMU_INSTANCE";
#       set either to "" before the call to leave it out.
#       Sets and exports: EMU_PORT, EMU_URL (https://localhost:PORT), EMU_CA
#       (the test CA), EMU_DIR, EMU_PID, EMU_LOG, EMU_API_KEY, EMU_INSTANCE.
#       Call it directly (not under `run`): the emulator must be a child of
#       the test's shell so that emulator_stop can reap it.  For the same
#       reason never use a bare `wait` while it runs (it would wait for the
#       emulator): wait for the PIDs you started.
#   emulator_stop
#       SIGTERM, wait up to 5 s (then SIGKILL); sets EMU_EXIT to the exit
#       status (0 = clean).  Harmless when nothing runs: call it in teardown.
#   emu_ctl METHOD PATH [JSON]
#       Call the control API and print the response body; fails on HTTP
#       errors.  PATH is relative to /_emulator/:
#           emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"drop","count":1}]}'
#   emu_stat NAME
#       Print one number from the stats, e.g. `emu_stat by_op.unwrap`.
#   emu_token [API_KEY]
#       Print a fresh access token (for $EMU_API_KEY by default).
#   emu_curl CURL_ARGS...
#       curl -sS with the test CA and a time limit ($EMU_CURL_TIMEOUT, 20 s);
#       for requests the helpers below don't fit.
#   emu_api METHOD PATH [JSON [CURL_ARGS...]]
#       A KMS call (JSON "" = no body) with a bearer token (cached in EMU_TOKEN) and the
#       Bluemix-Instance header.  Sets EMU_STATUS (HTTP code), EMU_BODY and
#       EMU_HEADERS (response headers); returns non-zero only if curl fails.
#       Use it outside `run` so that these variables survive.
#   emu_expect STATUS [REASON_CODE]
#       Check EMU_STATUS (and the first reason code of a KMS error body);
#       on mismatch print what came back and fail.
#   emu_create_key NAME [EXTRACTABLE [PAYLOAD_B64]]
#       Create a key and print its id.  Under $(...) the token is not
#       cached: set EMU_TOKEN=$(emu_token) first to avoid one IAM call each.

: "${EMU_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../emulator" && pwd)/kp-emulator}"
: "${EMU_API_KEY=test-api-key-0123456789}"
: "${EMU_INSTANCE=00000000-1111-2222-3333-444444444444}"
export EMU_BIN EMU_API_KEY EMU_INSTANCE

# True if PID is a live process (a zombie that only awaits `wait` is not).
_emu_alive() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	read -r _ _ state _ <"/proc/$1/stat" || return 1
	[ "$state" != Z ]
}

emulator_start() {
	local dir="" prev="" arg i
	local -a args=()
	for arg in "$@"; do
		case $arg in
			--state-dir=*) dir=${arg#--state-dir=} ;;
			*) [ "$prev" = --state-dir ] && dir=$arg ;;
		esac
		prev=$arg
	done
	if [ -z "$dir" ]; then
		dir=$(mktemp -d "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/emu.XXXXXX") || return 1
		args+=(--state-dir "$dir")
	fi
	[ -n "$EMU_API_KEY" ] && args+=(--api-key "$EMU_API_KEY")
	[ -n "$EMU_INSTANCE" ] && args+=(--instance-id "$EMU_INSTANCE")
	mkdir -p "$dir" || return 1
	rm -f "$dir/port"
	EMU_DIR=$dir
	EMU_LOG=$dir/emulator.log
	# 3>&-: bats waits for fd 3 to close; a background child must not hold it.
	"$EMU_BIN" "${args[@]}" --port-file "$dir/port" "$@" >>"$EMU_LOG" 2>&1 3>&- &
	EMU_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ -s "$dir/port" ] && break
		if ! _emu_alive "$EMU_PID"; then
			echo "kp-emulator exited during startup; log:" >&2
			cat "$EMU_LOG" >&2
			wait "$EMU_PID" 2>/dev/null
			EMU_PID=""
			return 1
		fi
		sleep 0.05
	done
	if [ ! -s "$dir/port" ]; then
		echo "kp-emulator did not listen within 10 s; log:" >&2
		cat "$EMU_LOG" >&2
		emulator_stop
		return 1
	fi
	EMU_PORT=$(<"$dir/port")
	EMU_URL=https://localhost:$EMU_PORT
	EMU_CA=$dir/ca.pem
	EMU_TOKEN=""
	export EMU_PORT EMU_URL EMU_CA EMU_DIR EMU_PID EMU_LOG EMU_API_KEY EMU_INSTANCE
}

emulator_stop() {
	local i
	[ -n "${EMU_PID:-}" ] || return 0
	kill -TERM "$EMU_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		_emu_alive "$EMU_PID" || break
		sleep 0.05
	done
	if _emu_alive "$EMU_PID"; then
		echo "kp-emulator ignored SIGTERM for 5 s; killing it" >&2
		kill -KILL "$EMU_PID" 2>/dev/null
	fi
	EMU_EXIT=0
	wait "$EMU_PID" 2>/dev/null || EMU_EXIT=$?
	export EMU_EXIT
	EMU_PID=""
	EMU_TOKEN=""
}

emu_curl() {
	# --max-time: a broken emulator must fail the suite, not hang it.
	curl -sS --max-time "${EMU_CURL_TIMEOUT:-20}" --cacert "$EMU_CA" "$@"
}

emu_ctl() {
	local method=$1 path=${2#/}
	path=${path#_emulator/}
	local -a args=(-X "$method" -H 'Accept: application/json' --fail-with-body)
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	emu_curl "${args[@]}" "$EMU_URL/_emulator/$path"
}

emu_stat() {
	emu_ctl GET stats | jq -er ".$1"
}

# shellcheck disable=SC2120  # the API key argument is optional
emu_token() {
	# The API key goes in on stdin, not on curl's command line.
	printf '%s' "${1:-$EMU_API_KEY}" |
		emu_curl --fail-with-body -H 'Accept: application/json' \
			--data-urlencode 'grant_type=urn:ibm:params:oauth:grant-type:apikey' \
			--data-urlencode 'apikey@-' "$EMU_URL/identity/token" |
		jq -er .access_token
}

emu_api() {
	local method=$1 path=$2
	shift 2
	local -a args=(-X "$method" -H 'Accept: application/json')
	if [ $# -ge 1 ]; then
		[ -n "$1" ] && args+=(-H 'Content-Type: application/json' --data-binary "$1")
		shift
	fi
	if [ -z "${EMU_TOKEN:-}" ]; then
		EMU_TOKEN=$(emu_token "$EMU_API_KEY") || return 1
	fi
	local out=${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/emu_api.$BASHPID
	EMU_STATUS=$(emu_curl "${args[@]}" -o "$out.body" -D "$out.headers" -w '%{http_code}' \
		-H "Authorization: Bearer $EMU_TOKEN" \
		-H "Bluemix-Instance: ${EMU_INSTANCE:-any-instance}" \
		"$@" "$EMU_URL$path") || return
	EMU_BODY=$(<"$out.body")
	# shellcheck disable=SC2034  # EMU_HEADERS is for the tests
	EMU_HEADERS=$(<"$out.headers")
	rm -f "$out.body" "$out.headers"
}

emu_create_key() {
	local body
	body=$(jq -nc --arg name "$1" --argjson ext "${2:-false}" --arg payload "${3:-}" '
		{metadata: {collectionType: "application/vnd.ibm.kms.key+json", collectionTotal: 1},
		 resources: [{type: "application/vnd.ibm.kms.key+json", name: $name, extractable: $ext}
		             + (if $payload == "" then {} else {payload: $payload} end)]}') || return 1
	emu_api POST /api/v2/keys "$body" || return 1
	if [ "$EMU_STATUS" != 201 ]; then
		echo "creating key '$1' failed: HTTP $EMU_STATUS $EMU_BODY" >&2
		return 1
	fi
	jq -er '.resources[0].id' <<<"$EMU_BODY"
}

emu_expect() {
	local code
	if [ "$EMU_STATUS" != "$1" ]; then
		echo "expected HTTP $1, got $EMU_STATUS: $EMU_BODY" >&2
		return 1
	fi
	[ $# -ge 2 ] || return 0
	code=$(jq -r '.resources[0].reasons[0].code' <<<"$EMU_BODY" 2>/dev/null)
	if [ "$code" != "$2" ]; then
		echo "expected reason $2, got '$code': $EMU_BODY" >&2
		return 1
	fi
}

# ---------------------------------------------------------------------------
# hpcs-for-luks binaries and configuration
#
#   HPCS_BIN_DIR   where hpcs-for-luks and hpcs-unlock are (default: build/)
#   hpcs_setup     emulator_start, then write $HPCS_CONF (mode 0600) pointing at
#                  it with ca_file and key_dir=$HPCS_KEYS, create a root key
#                  ($HPCS_CRK) and make the key directories. Each test gets its
#                  own key description prefix $HPCS_TAG so tests never share keys
#                  in root's user keyring.
#   hpcs_teardown  revoke this test's keys from @u, stop the emulator.
#   hpcs ARGS...   run the CLI with --config $HPCS_CONF.
#   key_id TYPE DESC     serial of the key in @u, or fail.
#   key_bytes DESC       the payload of user key DESC in @u, hex-encoded.
#   hpcs_write_conf      rewrite $HPCS_CONF from the variables above.

: "${HPCS_BIN_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"
export HPCS_BIN_DIR

hpcs_write_conf() {
	{
		echo "[KP]"
		echo "region = us-south"
		echo "endpoint_url = $EMU_URL"
		echo "iam_endpoint_url = $EMU_URL"
		echo "service_instance_id = $EMU_INSTANCE"
		echo "api_key = $EMU_API_KEY"
		echo "default_crk_uuid = ${HPCS_CRK:-}"
		echo "ca_file = $EMU_CA"
		echo "[HFL]"
		echo "key_dir = $HPCS_KEYS"
	} >"$HPCS_CONF"
	chmod 600 "$HPCS_CONF"
}

hpcs() {
	"$HPCS_BIN_DIR/hpcs-for-luks" --config "$HPCS_CONF" "$@"
}

hpcs_setup() {
	emulator_start "$@"
	HPCS_CONF="$BATS_TEST_TMPDIR/hpcs.ini"
	HPCS_KEYS="$BATS_TEST_TMPDIR/keys"
	HPCS_TAG="bats$$t${BATS_TEST_NUMBER}"
	mkdir -p "$HPCS_KEYS/logon" "$HPCS_KEYS/user"
	HPCS_CRK=""
	hpcs_write_conf
	HPCS_CRK=$(hpcs create --crk --name "root-$HPCS_TAG" --gen 2>/dev/null)
	[ -n "$HPCS_CRK" ]
	hpcs_write_conf
	export HPCS_CONF HPCS_KEYS HPCS_TAG HPCS_CRK
}

hpcs_teardown() {
	local id
	for id in $(keyctl rlist @u 2>/dev/null); do
		case "$(keyctl rdescribe "$id" 2>/dev/null)" in
			*";$HPCS_TAG"*)
				keyctl revoke "$id" 2>/dev/null
				keyctl unlink "$id" @u 2>/dev/null
				;;
		esac
	done
	emulator_stop
}

key_id() {
	keyctl search @u "$1" "$2"
}

key_bytes() {
	local id
	id=$(keyctl search @u user "$1") || return 1
	keyctl pipe "$id" | od -An -tx1 -v | tr -d ' \n'
}
