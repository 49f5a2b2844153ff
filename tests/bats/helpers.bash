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
#       With --metadata-bind ADDR among ARGS (the VPC metadata service) it
#       also waits for that listener and sets EMU_MD_PORT and EMU_MD_URL
#       (http://ADDR:PORT); without it both are empty.
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

# _wait_port_file FILE PID: wait up to 10 s until FILE has been written (the
# port a server listens on); fail at once if PID is gone.
_wait_port_file() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -s "$1" ] && return 0
		_emu_alive "$2" || return 1
		sleep 0.05
	done
	[ -s "$1" ]
}

emulator_start() {
	local dir="" md_bind="" prev="" arg
	local -a args=()
	for arg in "$@"; do
		case $arg in
			--state-dir=*) dir=${arg#--state-dir=} ;;
			--metadata-bind=*) md_bind=${arg#--metadata-bind=} ;;
			*)
				[ "$prev" = --state-dir ] && dir=$arg
				[ "$prev" = --metadata-bind ] && md_bind=$arg
				;;
		esac
		prev=$arg
	done
	if [ -z "$dir" ]; then
		dir=$(mktemp -d "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/emu.XXXXXX") || return 1
		args+=(--state-dir "$dir")
	fi
	[ -n "$EMU_API_KEY" ] && args+=(--api-key "$EMU_API_KEY")
	[ -n "$EMU_INSTANCE" ] && args+=(--instance-id "$EMU_INSTANCE")
	[ -n "$md_bind" ] && args+=(--metadata-port-file "$dir/md-port")
	mkdir -p "$dir" || return 1
	rm -f "$dir/port" "$dir/md-port"
	EMU_DIR=$dir
	EMU_LOG=$dir/emulator.log
	# 3>&-: bats waits for fd 3 to close; a background child must not hold it.
	"$EMU_BIN" "${args[@]}" --port-file "$dir/port" "$@" >>"$EMU_LOG" 2>&1 3>&- &
	EMU_PID=$!
	if ! _wait_port_file "$dir/port" "$EMU_PID"; then
		if _emu_alive "$EMU_PID"; then
			echo "kp-emulator did not listen within 10 s; log:" >&2
			cat "$EMU_LOG" >&2
			emulator_stop
		else
			echo "kp-emulator exited during startup; log:" >&2
			cat "$EMU_LOG" >&2
			wait "$EMU_PID" 2>/dev/null
			EMU_PID=""
		fi
		return 1
	fi
	EMU_PORT=$(<"$dir/port")
	EMU_URL=https://localhost:$EMU_PORT
	EMU_CA=$dir/ca.pem
	EMU_TOKEN=""
	EMU_MD_PORT="" EMU_MD_URL=""
	if [ -n "$md_bind" ]; then
		# Written before the HTTPS port file: there by now.
		EMU_MD_PORT=$(<"$dir/md-port") || return 1
		[[ $md_bind == *:* ]] && md_bind="[$md_bind]"
		EMU_MD_URL=http://$md_bind:$EMU_MD_PORT
	fi
	export EMU_PORT EMU_URL EMU_CA EMU_DIR EMU_PID EMU_LOG EMU_API_KEY EMU_INSTANCE \
		EMU_MD_PORT EMU_MD_URL
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
# hpcs-for-luks binaries, configuration and keyring
#
#   HPCS_BIN_DIR   where hpcs-for-luks and hpcs-unlock are (default: build/)
#   hpcs_setup [EMULATOR_ARGS...]
#       emulator_start, then: $HPCS_CONF, $HPCS_KEYS (with logon/ and user/)
#       and $HPCS_TAG under this test; a root key ($HPCS_CRK) made with the
#       CLI; the config written by hpcs_write_conf.  Each test gets its own
#       key description prefix $HPCS_TAG so that tests never share keys in
#       root's user keyring.
#   hpcs_teardown  hpcs_keyring_clean "$HPCS_TAG", then emulator_stop.
#   hpcs ARGS...   the CLI with --config $HPCS_CONF.
#   hpcs_write_conf [SECTION.KEY=VALUE | -SECTION.KEY | -SECTION]...
#       The one config writer of the suites (and of bench/run.sh): writes
#       $HPCS_CONF, mode 0600, from
#           [KP]  region = us-south, endpoint_url = $EMU_URL,
#                 iam_endpoint_url = $EMU_URL, service_instance_id =
#                 $EMU_INSTANCE, api_key = $EMU_API_KEY, default_crk_uuid =
#                 $HPCS_CRK, ca_file = $EMU_CA
#           [HFL] key_dir = $HPCS_KEYS
#       Each argument changes that: KP.api_key=TPM sets a value (also an
#       empty one; a key not listed above is added to its section),
#       -KP.endpoint_url leaves a key out, -KP leaves the whole section out.
#       Deliberately malformed files (parser tests) are written by hand.
#   hpcs_keyring_clean PREFIX
#       Revoke and unlink every key in @u whose description starts with
#       PREFIX; print how many there were.  The one keyring clean-up of the
#       suites and of bench/run.sh.  Never clear keyrings wholesale: other
#       test runs use @u at the same time.
#   key_id TYPE DESC     serial of the key in @u, or fail.
#   key_bytes DESC       the payload of user key DESC in @u, hex-encoded.
#   hpcs_rotate [CRK]    rotate the root key (default $HPCS_CRK) through the
#       KMS API, allowed first by the emulator's control API (the service's
#       once-an-hour limit); fails unless it answers 204.  Outside `run`.

: "${HPCS_BIN_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"
export HPCS_BIN_DIR
# The TPM lock's record (core/tpm_lock.h) of the tests' TPMs: never the
# host's /run/hpcs-for-luks/tpm-lock.
HPCS_TPM_LOCK_RECORD="${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}}}/tpm-lock.record"
export HPCS_TPM_LOCK_RECORD

# shellcheck disable=SC2120  # the arguments are optional
hpcs_write_conf() {
	local -a order=(KP.region KP.endpoint_url KP.iam_endpoint_url KP.service_instance_id
		KP.api_key KP.default_crk_uuid KP.ca_file HFL.key_dir)
	local -A val=([KP.region]=us-south [KP.endpoint_url]=${EMU_URL:-}
		[KP.iam_endpoint_url]=${EMU_URL:-} [KP.service_instance_id]=${EMU_INSTANCE:-}
		[KP.api_key]=${EMU_API_KEY:-} [KP.default_crk_uuid]=${HPCS_CRK:-}
		[KP.ca_file]=${EMU_CA:-} [HFL.key_dir]=${HPCS_KEYS:-})
	local arg name section header
	for arg in "$@"; do
		case $arg in
			-*.*) unset "val[${arg#-}]" ;;
			-*)
				for name in "${order[@]}"; do
					if [ "${name%%.*}" = "${arg#-}" ]; then unset "val[$name]"; fi
				done
				;;
			[A-Z]*.*=*)
				name=${arg%%=*}
				[[ " ${order[*]} " == *" $name "* ]] || order+=("$name")
				val[$name]=${arg#*=}
				;;
			*)
				echo "hpcs_write_conf: '$arg' is not SECTION.KEY=VALUE, -SECTION.KEY or -SECTION" >&2
				return 1
				;;
		esac
	done
	(
		umask 077
		for section in KP HFL; do
			header=no
			for name in "${order[@]}"; do
				[ "${name%%.*}" = "$section" ] && [ -v "val[$name]" ] || continue
				[ "$header" = yes ] || echo "[$section]"
				header=yes
				echo "${name#*.} = ${val[$name]}"
			done
		done >"$HPCS_CONF"
	) || return 1
	chmod 600 "$HPCS_CONF"
}

hpcs() {
	"$HPCS_BIN_DIR/hpcs-for-luks" --config "$HPCS_CONF" "$@"
}

hpcs_setup() {
	emulator_start "$@" || return 1
	HPCS_CONF="$BATS_TEST_TMPDIR/hpcs.ini"
	HPCS_KEYS="$BATS_TEST_TMPDIR/keys"
	HPCS_TAG="bats$$t${BATS_TEST_NUMBER}"
	mkdir -p "$HPCS_KEYS/logon" "$HPCS_KEYS/user"
	HPCS_CRK=""
	hpcs_write_conf
	HPCS_CRK=$(hpcs create --crk --name "root-$HPCS_TAG" --gen 2>/dev/null)
	[ -n "$HPCS_CRK" ] || return 1
	hpcs_write_conf
	export HPCS_CONF HPCS_KEYS HPCS_TAG HPCS_CRK
}

hpcs_keyring_clean() {
	local id desc count=0
	[ -n "$1" ] || return 1
	for id in $(keyctl rlist @u 2>/dev/null); do
		desc=$(keyctl rdescribe "$id" 2>/dev/null) || continue
		case ${desc#*;*;*;*;} in
			"$1"*)
				keyctl revoke "$id" >/dev/null 2>&1 || true
				keyctl unlink "$id" @u >/dev/null 2>&1 || true
				count=$((count + 1))
				;;
		esac
	done
	echo "$count"
}

hpcs_teardown() {
	if [ -n "${HPCS_TAG:-}" ]; then hpcs_keyring_clean "$HPCS_TAG" >/dev/null; fi
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

# ---------------------------------------------------------------------------
# Secrets in output
#
#   emu_tokens     every access token the emulator has issued, one a line.
#   refute_secrets TEXT SECRET...
#       Fail if any non-empty SECRET occurs in TEXT; the message names the
#       secret by its position and first characters, never in full.  For
#       "never printed" checks: pass the real secrets (the API key, the
#       tokens, a distinctive plaintext and its base64), not words such as
#       "Bearer" that a leak need not contain.

emu_tokens() {
	emu_ctl GET tokens | jq -er '.tokens[]'
}

refute_secrets() {
	local text=$1 secret n=0
	shift
	for secret in "$@"; do
		n=$((n + 1))
		[ -n "$secret" ] || continue
		if [[ "$text" == *"$secret"* ]]; then
			echo "secret #$n (${secret:0:6}...) appears in the output" >&2
			return 1
		fi
	done
}

# ---------------------------------------------------------------------------
# HTTP CONNECT proxy on loopback (tests/proxy/connect-proxy)
#
#   proxy_start    start it on a free port; sets PROXY_PORT, PROXY_URL
#                  (http://127.0.0.1:PORT), PROXY_LOG (one line per CONNECT:
#                  "CONNECT host:port STATUS") and PROXY_PID.  Call it
#                  directly, not under `run` (as emulator_start).
#   proxy_stop     stop it; harmless when none runs.

: "${PROXY_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../proxy" && pwd)/connect-proxy}"

proxy_start() {
	local dir
	dir=$(mktemp -d "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/proxy.XXXXXX") || return 1
	PROXY_LOG=$dir/connect.log
	: >"$PROXY_LOG"
	"$PROXY_BIN" --port-file "$dir/port" --log "$PROXY_LOG" >"$dir/stderr" 2>&1 3>&- &
	PROXY_PID=$!
	if ! _wait_port_file "$dir/port" "$PROXY_PID"; then
		echo "connect-proxy did not start; its output:" >&2
		cat "$dir/stderr" >&2
		proxy_stop
		return 1
	fi
	PROXY_PORT=$(<"$dir/port")
	PROXY_URL=http://127.0.0.1:$PROXY_PORT
	export PROXY_PORT PROXY_URL PROXY_LOG PROXY_PID
}

proxy_stop() {
	[ -n "${PROXY_PID:-}" ] || return 0
	kill -TERM "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
	PROXY_PID=""
}

# ---------------------------------------------------------------------------
# Initramfs images as dracut's hpcs module lays them out
#
#   hpcs_make_initrd OUT [CONF [KEY_DIR [BLOB]]]
#       A gzip'd cpio (what dracut writes, and lsinitrd reads) with
#       usr/sbin/hpcs-unlock (a stand-in), etc/hpcs-for-luks.ini written from
#       CONF (default $HPCS_CONF) the way the module writes it (`hpcs-for-luks
#       config --print`, with the module's paths inside the image), the
#       wrapped keys of KEY_DIR (default $HPCS_KEYS) and, if given, the sealed
#       API key BLOB. Seconds instead of a dracut run; for report's
#       initramfs checks.

# _hpcs_initrd_config CONF DST BLOB_IN_IMAGE: the module's config rewrite
# (dracut/99hpcs/module-setup.sh, install()): a sealed API key stays a
# blob at BLOB_IN_IMAGE, a literal one goes in.
_hpcs_initrd_config() {
	local how=(--with-api-key)
	[ -z "$3" ] || how=(--tpm-blob "$3")
	(umask 077 && "$HPCS_BIN_DIR/hpcs-for-luks" --config "$1" config --print \
		--key-dir /var/lib/hpcs-for-luks --ca-file /etc/hpcs-for-luks/ca.pem "${how[@]}" >"$2")
}

hpcs_make_initrd() {
	local out=$1 conf=${2:-$HPCS_CONF} keys=${3:-$HPCS_KEYS} blob=${4:-} d
	local image_blob=/var/lib/hpcs-for-luks/api-key-blob.txt
	d=$(mktemp -d "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/initrd.XXXXXX") || return 1
	mkdir -p "$d/usr/sbin" "$d/etc/hpcs-for-luks" "$d/var/lib/hpcs-for-luks" || return 1
	# report only looks for it; a stand-in keeps the image (and its unpacking) small.
	printf '#!/bin/sh\nexit 0\n' >"$d/usr/sbin/hpcs-unlock" && chmod 755 "$d/usr/sbin/hpcs-unlock" ||
		return 1
	_hpcs_initrd_config "$conf" "$d/etc/hpcs-for-luks.ini" "${blob:+$image_blob}" || return 1
	cp -a "$keys/logon" "$keys/user" "$d/var/lib/hpcs-for-luks/" || return 1
	if [ -n "$blob" ]; then cp "$blob" "$d$image_blob" || return 1; fi
	# 0600, as dracut writes a new image.
	(umask 077 && cd "$d" && find . | cpio -o -H newc --quiet | gzip >"$out") || return 1
	rm -rf "$d"
}

# ---------------------------------------------------------------------------
# Another writer holding a lock file (the key directory's <key_dir>/.lock,
# hpcs-enroll's crypttab lock)
#
#   lock_hold FILE [PROGRAM]
#       Hold an exclusive flock on FILE in the background, marked as our
#       writers mark it ("<pid> PROGRAM", default test-writer), until
#       lock_release; returns once it is held. Sets LOCK_PID.
#   lock_release
#       Ends the holder (harmless when there is none): call it in teardown.

lock_hold() {
	local file=$1 name=${2:-test-writer} i
	(
		exec 9>>"$file"
		flock 9
		printf '%s %s\n' "$BASHPID" "$name" >"$file"
		exec sleep 600
	) 3>&- &
	LOCK_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(cut -d' ' -f1 "$file" 2>/dev/null)" != "$LOCK_PID" ] || return 0
		sleep 0.05
	done
	return 1
}

lock_release() {
	[ -n "${LOCK_PID:-}" ] || return 0
	kill "$LOCK_PID" 2>/dev/null || true
	wait "$LOCK_PID" 2>/dev/null || true
	LOCK_PID=""
}

# ---------------------------------------------------------------------------
# hpcs LUKS2 tokens (issue 25), wrapped by the emulator as WrapHpcsToken wraps
# them (for the token helper's and the token plugin's suites)
#
#   hpcs_wrapped_token UUID PASSPHRASE [KEYSLOT [NAME]]
#       Print the token JSON (compact) of PASSPHRASE wrapped by $HPCS_CRK with
#       the AAD of the LUKS2 volume UUID, for key slot KEYSLOT (default 0),
#       named NAME (default: no name). Needs hpcs_setup; outside `run`.

hpcs_wrapped_token() {
	local uuid=$1 pass=$2 slot=${3:-0} name=${4:-}
	emu_api POST "/api/v2/keys/$HPCS_CRK/actions/wrap" \
		"$(jq -nc --arg pt "$(printf '%s' "$pass" | base64 -w0)" --arg aad "luks2-uuid:$uuid" \
			'{plaintext: $pt, aad: [$aad]}')" || return 1
	[ "$EMU_STATUS" = 200 ] || {
		echo "hpcs_wrapped_token: wrap answered $EMU_STATUS: $EMU_BODY" >&2
		return 1
	}
	jq -c --arg kms "$EMU_URL" --arg inst "$EMU_INSTANCE" --arg crk "$HPCS_CRK" --arg slot "$slot" \
		--arg name "$name" '
		{type: "hpcs", keyslots: [$slot], version: 1, kms: $kms, instance: $inst, crk: $crk,
		 key_version: .keyVersion.id, bound_to: "luks2-uuid", ciphertext: .ciphertext}
		+ (if $name == "" then {} else {name: $name} end)' <<<"$EMU_BODY"
}

hpcs_rotate() {
	emu_ctl POST "keys/${1:-$HPCS_CRK}/allow-rotate" >/dev/null
	emu_api POST "/api/v2/keys/${1:-$HPCS_CRK}/actions/rotate"
	emu_expect 204
}

# ---------------------------------------------------------------------------
# Stand-ins for the programs a command runs
#
#   fake_tool NAME SCRIPT
#       $BATS_TEST_TMPDIR/bin/NAME running SCRIPT (sh), with REAL set to the
#       real NAME and STATE to $BATS_TEST_TMPDIR/NAME.state, for a run with
#       PATH="$BATS_TEST_TMPDIR/bin:$PATH" (a failing step, an interrupt at
#       a given step: `[ "$1" != luksAddKey ] || kill -TERM "$PPID"`).

fake_tool() {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	{
		echo '#!/bin/sh'
		echo "REAL=$(command -v "$1" || echo /nonexistent)"
		echo "STATE=$BATS_TEST_TMPDIR/$1.state"
		echo "$2"
	} >"$BATS_TEST_TMPDIR/bin/$1"
	chmod +x "$BATS_TEST_TMPDIR/bin/$1"
}
