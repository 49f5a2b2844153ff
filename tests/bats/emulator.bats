#!/usr/bin/env bats
# Tests of the Key Protect emulator itself (tests/emulator/kp-emulator).
#
# Every other test trusts the emulator to behave like the real service
# (/work/shared/kp-api.md): these tests pin that behaviour down with plain
# curl, so that a client bug cannot hide behind an emulator bug.
#
# Run: bats tests/bats/emulator.bats

load helpers

KEY_TYPE=application/vnd.ibm.kms.key+json
ERROR_TYPE=application/vnd.ibm.kms.error+json

# Trusted profiles of the "metadata:" tests: the instance's default, one
# without a Key Protect role, one not linked to the instance.
P_DEF=Profile-00000000-0000-4000-8000-0000000000d1
P_NOROLE=Profile-00000000-0000-4000-8000-0000000000n1
P_UNLINKED=Profile-00000000-0000-4000-8000-0000000000u1
P_CRN=crn:v1:bluemix:public:iam-identity::a/e0000000000000000000000000000001::profile:$P_NOROLE

setup() {
	if [[ $BATS_TEST_DESCRIPTION == "metadata service:"* ]]; then
		emulator_start --metadata-bind 127.0.0.1 --trusted-profile "$P_DEF,default" \
			--trusted-profile "$P_NOROLE,name=no-role,norole" --trusted-profile "$P_UNLINKED,unlinked"
	else
		emulator_start
	fi
	EMU_TOKEN=$(emu_token)
}

teardown() {
	emulator_stop
}

# jq on the last response body; fails on false/null.
body() {
	jq -er "$@" <<<"$EMU_BODY"
}

# The value of one response header of the last emu_api call.
header() {
	tr -d '\r' <<<"$EMU_HEADERS" | awk -v h="$(tr '[:upper:]' '[:lower:]' <<<"$1")" -F': ' \
		'tolower($1) == h { print substr($0, length($1) + 3) }'
}

wrap_body() { # PLAINTEXT_B64 [AAD_JSON]
	jq -nc --arg pt "$1" --argjson aad "${2:-null}" \
		'{plaintext: $pt} + (if $aad == null then {} else {aad: $aad} end)'
}

unwrap_body() { # CIPHERTEXT [AAD_JSON]
	jq -nc --arg ct "$1" --argjson aad "${2:-null}" \
		'{ciphertext: $ct} + (if $aad == null then {} else {aad: $aad} end)'
}

create_body() { # NAME [EXTRACTABLE [PAYLOAD_B64]]
	jq -nc --arg name "$1" --argjson ext "${2:-false}" --arg payload "${3:-}" '
		{metadata: {collectionType: "application/vnd.ibm.kms.key+json", collectionTotal: 1},
		 resources: [{type: "application/vnd.ibm.kms.key+json", name: $name, extractable: $ext}
		             + (if $payload == "" then {} else {payload: $payload} end)]}'
}

random_b64() { # BYTES
	head -c "$1" /dev/urandom | base64 -w0
}

# Decode the opaque ciphertext into its JSON envelope.
ciphertext_json() {
	base64 -d <<<"$1"
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# md METHOD PATH_AND_QUERY [BODY [CURL_ARGS...]]: a call to the metadata
# service (BODY "" = none); sets MD_STATUS and MD_BODY.
md() {
	local method=$1 path=$2
	shift 2
	local -a args=(-X "$method")
	if [ $# -ge 1 ]; then
		[ -n "$1" ] && args+=(--data-binary "$1")
		shift
	fi
	MD_STATUS=$(curl -sS --max-time 20 -o "$BATS_TEST_TMPDIR/md.body" -w '%{http_code}' \
		"${args[@]}" "$@" "$EMU_MD_URL$path") || return
	MD_BODY=$(<"$BATS_TEST_TMPDIR/md.body")
}

# md_expect STATUS [CODE [TARGET]]: the last md answer, VPC-style when an error.
md_expect() {
	if [ "$MD_STATUS" != "$1" ] ||
		{ [ -n "${2:-}" ] && [ "$(jq -r '.errors[0].code' <<<"$MD_BODY")" != "$2" ]; } ||
		{ [ -n "${3:-}" ] && [ "$(jq -r '.errors[0].target.name' <<<"$MD_BODY")" != "$3" ]; }; then
		echo "expected $1 ${2:-} ${3:-}, got HTTP $MD_STATUS: $MD_BODY" >&2
		return 1
	fi
	if [ "$1" -ge 400 ]; then
		jq -e '(.errors | length) == 1 and (.errors[0].message | length) > 0
			and (.errors[0].more_info | startswith("https://")) and (.trace | length) > 0
			and .status_code == '"$1" <<<"$MD_BODY" >/dev/null
	fi
}

# md_identity [VERSION [BODY]]: a fresh instance identity token in MD_IT
# (and the answer in MD_*). Not under $(...): MD_BODY would not survive.
md_identity() {
	local v=${1:-2022-03-01} body=${2:-'{}'} path=/instance_identity/v1/token
	[[ $v > 2025-08-25 ]] && path=/identity/v1/token
	md PUT "$path?version=$v" "$body" -H 'Metadata-Flavor: ibm' || return
	md_expect 200 || return
	MD_IT=$(jq -er .access_token <<<"$MD_BODY")
}

# md_iam IDENTITY_TOKEN [BODY [VERSION]]: the IAM token call; sets MD_*.
md_iam() {
	local v=${3:-2022-03-01} path=/instance_identity/v1/iam_token
	[[ $v > 2025-08-25 ]] && path=/identity/v1/iam_tokens
	md POST "$path?version=$v" "${2:-}" -H "Authorization: Bearer $1"
}

# The claims of a JWT-shaped token.
jwt_claims() {
	local p
	p=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
	while [ $((${#p} % 4)) -ne 0 ]; do p+="="; done
	base64 -d <<<"$p"
}

# --- TLS --------------------------------------------------------------------

@test "TLS: the certificate verifies against ca.pem for every SAN, and only for those" {
	run emu_curl -o /dev/null -w '%{http_code}' "$EMU_URL/_emulator/stats"
	[ "$status" -eq 0 ]
	[ "$output" = 200 ]
	for name in kms.test iam.test; do
		run emu_curl -o /dev/null -w '%{http_code}' --resolve "$name:$EMU_PORT:127.0.0.1" \
			"https://$name:$EMU_PORT/_emulator/stats"
		[ "$status" -eq 0 ]
	done
	# IP literals: 127.0.0.1, and 10.0.2.2 (the host as a qemu guest sees it).
	run emu_curl -o /dev/null "https://127.0.0.1:$EMU_PORT/_emulator/stats"
	[ "$status" -eq 0 ]
	run emu_curl -o /dev/null --connect-to "10.0.2.2:$EMU_PORT:127.0.0.1:$EMU_PORT" \
		"https://10.0.2.2:$EMU_PORT/_emulator/stats"
	[ "$status" -eq 0 ]
	run emu_curl -o /dev/null --connect-to "10.0.2.3:$EMU_PORT:127.0.0.1:$EMU_PORT" \
		"https://10.0.2.3:$EMU_PORT/_emulator/stats"
	[ "$status" -eq 60 ]
	# A name outside the SANs, and the system CAs instead of ours: refused.
	run emu_curl -o /dev/null --resolve "other.test:$EMU_PORT:127.0.0.1" \
		"https://other.test:$EMU_PORT/_emulator/stats"
	[ "$status" -eq 60 ]
	run curl -sS -o /dev/null "$EMU_URL/_emulator/stats"
	[ "$status" -eq 60 ]
	# TLS 1.2 exactly: the static client's mbedTLS 2.28 speaks nothing newer.
	run emu_curl -o /dev/null --tlsv1.2 --tls-max 1.2 "$EMU_URL/_emulator/stats"
	[ "$status" -eq 0 ]
}

@test "TLS: a session stays resumable by its ID after its connection has closed" {
	# curl over mbedTLS resumes TLS 1.2 sessions by ID, never by ticket. A
	# server that closes without close_notify loses the session in OpenSSL.
	local -a s_client=(openssl s_client -connect "127.0.0.1:$EMU_PORT" -servername localhost
		-CAfile "$EMU_CA" -verify_return_error -tls1_2 -no_ticket)
	run "${s_client[@]}" -sess_out "$BATS_TEST_TMPDIR/session" </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *"New, TLSv1.2"* ]]
	sleep 0.5 # the server's thread has closed its end by now
	run "${s_client[@]}" -sess_in "$BATS_TEST_TMPDIR/session" </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *"Reused, TLSv1.2"* ]]
}

@test "TLS: CA and server certificate carry the extensions mbedTLS needs" {
	run openssl verify -CAfile "$EMU_DIR/ca.pem" -purpose sslserver "$EMU_DIR/server.pem"
	[ "$status" -eq 0 ]
	ca=$(openssl x509 -noout -text -in "$EMU_DIR/ca.pem")
	leaf=$(openssl x509 -noout -text -in "$EMU_DIR/server.pem")
	[[ $ca == *"CA:TRUE"* ]]
	[[ $ca == *"Certificate Sign"* ]]
	[[ $leaf == *"ecdsa-with-SHA256"* ]]
	[[ $leaf == *"CA:FALSE"* ]]
	[[ $leaf == *"TLS Web Server Authentication"* ]]
	for san in DNS:localhost DNS:kms.test DNS:iam.test "IP Address:127.0.0.1" "IP Address:10.0.2.2"; do
		[[ $leaf == *"$san"* ]]
	done
	[ "$(stat -c %a "$EMU_DIR/ca.key")" = 600 ]
	[ "$(stat -c %a "$EMU_DIR/server.key")" = 600 ]
}

@test "TLS: mbedTLS 2.28 (the static client's TLS library) verifies the server, keep-alive works" {
	if ! command -v cc >/dev/null || ! echo '#include <mbedtls/ssl.h>' | cc -E - >/dev/null 2>&1; then
		skip "needs a C compiler and the mbedTLS headers (libmbedtls-dev)"
	fi
	# A minimal mbedTLS client: verified TLS handshake for HOST, then two
	# requests over the one connection; prints the version and status lines.
	cat >"$BATS_TEST_TMPDIR/mbed.c" <<-'EOF'
		#include <mbedtls/ctr_drbg.h>
		#include <mbedtls/entropy.h>
		#include <mbedtls/net_sockets.h>
		#include <mbedtls/ssl.h>
		#include <stdio.h>
		#include <string.h>
		int main(int argc, char **argv) {
		  mbedtls_net_context fd; mbedtls_ssl_context ssl; mbedtls_ssl_config conf;
		  mbedtls_x509_crt ca; mbedtls_entropy_context ent; mbedtls_ctr_drbg_context drbg;
		  mbedtls_net_init(&fd); mbedtls_ssl_init(&ssl); mbedtls_ssl_config_init(&conf);
		  mbedtls_x509_crt_init(&ca); mbedtls_entropy_init(&ent); mbedtls_ctr_drbg_init(&drbg);
		  if (argc != 4 || mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0) ||
		      mbedtls_x509_crt_parse_file(&ca, argv[3]) ||
		      mbedtls_net_connect(&fd, "127.0.0.1", argv[2], MBEDTLS_NET_PROTO_TCP)) return 2;
		  mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
		                              MBEDTLS_SSL_PRESET_DEFAULT);
		  mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
		  mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
		  mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
		  mbedtls_ssl_setup(&ssl, &conf);
		  mbedtls_ssl_set_hostname(&ssl, argv[1]);
		  mbedtls_ssl_set_bio(&ssl, &fd, mbedtls_net_send, mbedtls_net_recv, NULL);
		  int r;
		  while ((r = mbedtls_ssl_handshake(&ssl)) != 0)
		    if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE) {
		      printf("handshake failed: -0x%x verify flags %u\n", -r, mbedtls_ssl_get_verify_result(&ssl));
		      return 1;
		    }
		  printf("%s\n", mbedtls_ssl_get_version(&ssl));
		  for (int i = 0; i < 2; i++) {
		    char req[256], buf[8192] = "";
		    size_t len = 0;
		    snprintf(req, sizeof req, "GET /_emulator/stats HTTP/1.1\r\nHost: %s\r\n\r\n", argv[1]);
		    mbedtls_ssl_write(&ssl, (const unsigned char *)req, strlen(req));
		    /* The stats body is one JSON object: read until its closing brace. */
		    while (len == 0 || buf[len - 1] != '}') {
		      int n = mbedtls_ssl_read(&ssl, (unsigned char *)buf + len, sizeof buf - 1 - len);
		      if (n <= 0) return 3;
		      len += n;
		      buf[len] = 0;
		    }
		    buf[strcspn(buf, "\r\n")] = 0;
		    printf("%s\n", buf);
		  }
		  mbedtls_ssl_close_notify(&ssl);
		  return 0;
		}
	EOF
	cc -o "$BATS_TEST_TMPDIR/mbed" "$BATS_TEST_TMPDIR/mbed.c" -lmbedtls -lmbedx509 -lmbedcrypto
	# mbedTLS 2.28 matches an IP only against dNSName SANs: 10.0.2.2 must work too.
	for host in localhost kms.test iam.test 10.0.2.2; do
		run "$BATS_TEST_TMPDIR/mbed" "$host" "$EMU_PORT" "$EMU_CA"
		[ "$status" -eq 0 ]
		[ "${lines[0]}" = TLSv1.2 ]
		[ "${lines[1]}" = "HTTP/1.1 200 OK" ]
		[ "${lines[2]}" = "HTTP/1.1 200 OK" ]
	done
	run "$BATS_TEST_TMPDIR/mbed" wrong.test "$EMU_PORT" "$EMU_CA"
	[ "$status" -eq 1 ]
	[[ $output == "handshake failed"* ]]
}

# --- IAM --------------------------------------------------------------------

@test "IAM: an API key gets a compact token response, access_token first, unique tokens" {
	before=$(date +%s)
	run emu_curl -w '\n%{http_code}' --data-urlencode "grant_type=urn:ibm:params:oauth:grant-type:apikey" \
		--data-urlencode "apikey=$EMU_API_KEY" "$EMU_URL/identity/token"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = 200 ]
	resp=${lines[0]}
	[[ $resp == '{"access_token":"'* ]]
	[ "$(jq -r .token_type <<<"$resp")" = Bearer ]
	[ "$(jq -r .expires_in <<<"$resp")" = 3600 ]
	exp=$(jq -r .expiration <<<"$resp")
	# Whole seconds, rounded up: the token lives at least expires_in seconds.
	[ "$exp" -ge $((before + 3600)) ]
	[ "$exp" -le $(($(date +%s) + 3601)) ]
	token=$(jq -r .access_token <<<"$resp")
	[[ $token =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]
	# /oidc/token works too, and every issue is a different token.
	other=$(emu_curl --fail-with-body -d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=$EMU_API_KEY" \
		"$EMU_URL/oidc/token" | jq -er .access_token)
	[ -n "$other" ]
	[ "$other" != "$token" ]
	EMU_TOKEN=$other
	emu_api GET /api/v2/keys
	emu_expect 200
}

@test "IAM: unknown API key is 400 BXNIM0415E; bad grant_type and method are refused" {
	run emu_curl -w '\n%{http_code}' -d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=no-such-key" \
		"$EMU_URL/identity/token"
	[ "${lines[1]}" = 400 ]
	[ "$(jq -r .errorCode <<<"${lines[0]}")" = BXNIM0415E ]
	[ "$(jq -r .errorMessage <<<"${lines[0]}")" = "Provided API key could not be found." ]
	[ "$(jq -r .context.requestId <<<"${lines[0]}")" != null ]

	run emu_curl -w '\n%{http_code}' -d "apikey=$EMU_API_KEY" "$EMU_URL/identity/token"
	[ "${lines[1]}" = 400 ]
	[[ $(jq -r .errorCode <<<"${lines[0]}") == BXNIM* ]]
	[[ $(jq -r .errorMessage <<<"${lines[0]}") == *grant_type* ]]

	run emu_curl -w '\n%{http_code}' -d "grant_type=password&apikey=$EMU_API_KEY" "$EMU_URL/identity/token"
	[ "${lines[1]}" = 400 ]
	[[ $(jq -r .errorMessage <<<"${lines[0]}") == *"grant type"* ]]
	[ "$(jq -r .access_token <<<"${lines[0]}")" = null ]

	run emu_curl -o /dev/null -w '%{http_code}' "$EMU_URL/identity/token"
	[ "$output" = 405 ]
}

@test "IAM: tokens expire after --token-ttl" {
	emulator_stop
	emulator_start --token-ttl 1
	resp=$(emu_curl -d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=$EMU_API_KEY" \
		"$EMU_URL/identity/token")
	[ "$(jq -r .expires_in <<<"$resp")" = 1 ]
	EMU_TOKEN=$(jq -r .access_token <<<"$resp")
	emu_api GET /api/v2/keys
	emu_expect 200
	sleep 2.1
	emu_api GET /api/v2/keys
	emu_expect 401
	[ "$(body '.resources[0] | keys | join(",")')" = errorMsg ]
}

# --- KMS: authentication and headers -------------------------------------------

@test "KMS auth: 401 without a valid bearer (errorMsg only); Bluemix-Instance required and checked" {
	url=$EMU_URL/api/v2/keys
	run emu_curl -w '\n%{http_code}' -H "Bluemix-Instance: $EMU_INSTANCE" "$url"
	[ "${lines[1]}" = 401 ]
	[ "$(jq -r .metadata.collectionType <<<"${lines[0]}")" = "$ERROR_TYPE" ]
	[ "$(jq -r '.resources[0] | keys | join(",")' <<<"${lines[0]}")" = errorMsg ]
	[[ $(jq -r '.resources[0].errorMsg' <<<"${lines[0]}") == Unauthorized* ]]

	run emu_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer not.a.token" \
		-H "Bluemix-Instance: $EMU_INSTANCE" "$url"
	[ "$output" = 401 ]
	# A token with one flipped signature character is refused.
	last=${EMU_TOKEN: -2:1}
	[ "$last" = A ] && flip=B || flip=A
	forged=${EMU_TOKEN:0:${#EMU_TOKEN}-2}$flip${EMU_TOKEN: -1}
	run emu_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $forged" \
		-H "Bluemix-Instance: $EMU_INSTANCE" "$url"
	[ "$output" = 401 ]

	# Valid token, header missing -> 400; wrong instance -> 401 (no access to it).
	run emu_curl -w '\n%{http_code}' -H "Authorization: Bearer $EMU_TOKEN" "$url"
	[ "${lines[1]}" = 400 ]
	[[ $(jq -r '.resources[0].reasons[0].message' <<<"${lines[0]}") == *Bluemix-Instance* ]]
	run emu_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $EMU_TOKEN" \
		-H "Bluemix-Instance: 99999999-1111-2222-3333-444444444444" "$url"
	[ "$output" = 401 ]

	# Header names are case-insensitive.
	run emu_curl -o /dev/null -w '%{http_code}' -H "authorization: bearer $EMU_TOKEN" \
		-H "BLUEMIX-INSTANCE: $EMU_INSTANCE" "$url"
	[ "$output" = 200 ]
}

@test "KMS: Correlation-Id is echoed; Content-Length matches the body; unknown paths are 404" {
	emu_api GET /api/v2/keys "" -H "Correlation-Id: 3f1c2b9a-0000-4000-8000-123456789abc"
	emu_expect 200
	[ "$(header Correlation-Id)" = 3f1c2b9a-0000-4000-8000-123456789abc ]
	[ "$(header Content-Length)" = "${#EMU_BODY}" ]
	[ "$(header Content-Type)" = application/json ]
	emu_api GET /api/v2/nothing-here
	emu_expect 404
	[ "$(body .metadata.collectionType)" = "$ERROR_TYPE" ]
}

# --- KMS: create, get, list ---------------------------------------------------------

@test "create: root and standard keys; get by id and by name; payload only for standard keys" {
	emu_api POST /api/v2/keys "$(create_body root-one)"
	emu_expect 201
	[ "$(body .metadata.collectionType)" = "$KEY_TYPE" ]
	[ "$(body .metadata.collectionTotal)" = 1 ]
	id=$(body '.resources[0].id')
	[[ $id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
	[ "$(body '.resources[0].name')" = root-one ]
	[ "$(body '.resources[0].state')" = 1 ]
	[ "$(body '.resources[0].extractable')" = false ]
	[ "$(body '.resources[0].deleted')" = false ]
	[[ $(body '.resources[0].crn') == crn:v1:*:kms:*:key:$id ]]
	body '.resources[0].keyVersion.id and .resources[0].keyVersion.creationDate and .resources[0].creationDate'
	[ "$(body '.resources[0] | has("payload")')" = false ]

	std=$(random_b64 48)
	emu_api POST /api/v2/keys "$(create_body std-one true "$std")" \
		-H "Content-Type: application/vnd.ibm.kms.key+json"
	emu_expect 201
	std_id=$(body '.resources[0].id')

	emu_api GET "/api/v2/keys/$id"
	emu_expect 200
	[ "$(body '.resources[0].id')" = "$id" ]
	[ "$(body '.resources[0] | has("payload")')" = false ]
	emu_api GET /api/v2/keys/root-one
	emu_expect 200
	[ "$(body '.resources[0].id')" = "$id" ]
	emu_api GET "/api/v2/keys/$std_id"
	emu_expect 200
	[ "$(body '.resources[0].payload')" = "$std" ]
	[ "$(body '.resources[0].extractable')" = true ]

	emu_api GET /api/v2/keys/00000000-0000-4000-8000-000000000000
	emu_expect 404
	[ "$(body .metadata.collectionType)" = "$ERROR_TYPE" ]
	[ "$(body '.resources[0].reasons[0].status')" = 404 ]
}

@test "create: imported root key sizes, name length, malformed bodies" {
	for n in 16 24 32; do
		emu_api POST /api/v2/keys "$(create_body "imported-$n" false "$(random_b64 $n)")"
		emu_expect 201
		[ "$(body '.resources[0].imported')" = true ]
	done
	emu_api POST /api/v2/keys "$(create_body imported-20 false "$(random_b64 20)")"
	emu_expect 400 BAD_BODY_ERR
	emu_api POST /api/v2/keys "$(create_body imported-bad false 'not*base64')"
	emu_expect 400 BAD_BODY_ERR

	emu_api POST /api/v2/keys "$(create_body x)"
	emu_expect 400 BAD_BODY_ERR
	emu_api POST /api/v2/keys "$(create_body "$(printf 'n%.0s' {1..90})")"
	emu_expect 201
	emu_api POST /api/v2/keys "$(create_body "$(printf 'n%.0s' {1..91})")"
	emu_expect 400 BAD_BODY_ERR

	emu_api POST /api/v2/keys '{"metadata": '
	emu_expect 400 BAD_BODY_ERR
	emu_api POST /api/v2/keys '[1,2]'
	emu_expect 400 BAD_BODY_ERR
	emu_api POST /api/v2/keys '{"resources":[{"type":"application/vnd.ibm.kms.key+json","name":"nometa"}]}'
	emu_expect 400 BAD_BODY_ERR
	emu_api POST /api/v2/keys ''
	emu_expect 400 NO_BODY_ERR

	# None of the refused requests created a key: 3 imported + the 90-char one.
	emu_api GET /api/v2/keys
	[ "$(body .metadata.collectionTotal)" = 4 ]
}

@test "list: limit/offset paging, collectionTotal per page, filters, limits out of range" {
	for i in 1 2 3 4; do
		emu_create_key "root-$i" >/dev/null
	done
	emu_create_key std-5 true >/dev/null

	emu_api GET /api/v2/keys
	emu_expect 200
	[ "$(body '.resources | length')" = 5 ]
	[ "$(body .metadata.collectionTotal)" = 5 ]
	all=$(body '.resources[].id')

	paged=""
	for offset in 0 2 4 6; do
		emu_api GET "/api/v2/keys?limit=2&offset=$offset"
		emu_expect 200
		n=$(body '.resources | length')
		[ "$(body .metadata.collectionTotal)" = "$n" ]
		case $offset in 0 | 2) [ "$n" = 2 ] ;; 4) [ "$n" = 1 ] ;; 6) [ "$n" = 0 ] ;; esac
		paged+=$(jq -r '.resources[].id' <<<"$EMU_BODY")$'\n'
	done
	[ "$(grep -v '^$' <<<"$paged")" = "$all" ]
	[ "$(sort -u <<<"$all" | wc -l)" = 5 ]

	emu_api GET "/api/v2/keys?limit=2&totalCount=true"
	[ "$(body .metadata.totalCount)" = 5 ]
	[ "$(body .metadata.collectionTotal)" = 2 ]
	emu_api GET "/api/v2/keys?extractable=true"
	[ "$(body '[.resources[].name] | join(",")')" = std-5 ]

	emu_api GET "/api/v2/keys?limit=5000"
	emu_expect 200
	for bad in "limit=0" "limit=5001" "limit=abc" "offset=-1" "state=4" "extractable=maybe"; do
		emu_api GET "/api/v2/keys?$bad"
		emu_expect 400
		[ "$(body .metadata.collectionType)" = "$ERROR_TYPE" ]
	done
}

# --- KMS: wrap and unwrap -------------------------------------------------------

@test "wrap/unwrap: AES-GCM round trip with AAD, legacy ?action=, trailing newline" {
	id=$(emu_create_key wrap-root)
	emu_api GET "/api/v2/keys/$id"
	version=$(body '.resources[0].keyVersion.id')
	pt=$(random_b64 32)

	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt" '["a","b"]')" \
		-H "Content-Type: application/vnd.ibm.kms.key_action+json"
	emu_expect 200
	ct=$(body .ciphertext)
	[ "$(body .keyVersion.id)" = "$version" ]
	[ "$(body 'has("plaintext")')" = false ]
	env=$(ciphertext_json "$ct")
	[ "$(jq -r .version <<<"$env")" = 4.0.0 ]
	[ "$(jq -r .handle <<<"$env")" = "$version" ]
	[ "$(jq -r .iv <<<"$env" | base64 -d | wc -c)" = 12 ]
	# 32 bytes of plaintext + 16 bytes of GCM tag.
	[ "$(jq -r .ciphertext <<<"$env" | base64 -d | wc -c)" = 48 ]

	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct" '["a","b"]')"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
	[ "$(body .keyVersion.id)" = "$version" ]
	[ "$(body 'has("rewrappedKeyVersion") or has("ciphertext")')" = false ]
	[[ $EMU_BODY == '{"plaintext":'* ]]

	# A stored wrapped-key file ends in a newline: accepted.
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct"$'\n' '["a","b"]')"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]

	# The legacy form, and a second wrap of the same plaintext differs (fresh IV).
	emu_api POST "/api/v2/keys/$id?action=wrap" "$(wrap_body "$pt")"
	emu_expect 200
	ct2=$(body .ciphertext)
	[ "$ct2" != "$ct" ]
	emu_api POST "/api/v2/keys/$id?action=unwrap" "$(unwrap_body "$ct2")"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]

	# A chunked request body is read correctly too.
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct2")" \
		-H "Transfer-Encoding: chunked"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
}

@test "wrap: without plaintext the service generates a 32-byte key and returns it" {
	id=$(emu_create_key gen-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" '{}'
	emu_expect 200
	dek=$(body .plaintext)
	[ "$(base64 -d <<<"$dek" | wc -c)" = 32 ]
	ct=$(body .ciphertext)
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	[ "$(body .plaintext)" = "$dek" ]
}

@test "wrap: plaintext limits, bad bodies, standard keys refused with KEY_ROOT_REQ_ERR" {
	id=$(emu_create_key limit-root)
	big=$(head -c 3072 /dev/zero | base64 -w0) # exactly 4096 characters
	[ "${#big}" = 4096 ]
	# A body this size may come with "Expect: 100-continue": the interim
	# response must come at once (curl would otherwise wait 10 s here).
	start=$(now_ms)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$big")" \
		-H "Expect: 100-continue" --expect100-timeout 10
	emu_expect 200
	[ $(($(now_ms) - start)) -lt 5000 ]
	bigger=$(head -c 3075 /dev/zero | base64 -w0)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$bigger")"
	emu_expect 400 BAD_BODY_ERR
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body 'no base64!')"
	emu_expect 400 BAD_BODY_ERR
	emu_api POST "/api/v2/keys/$id/actions/wrap" 'plaintext=aGVsbG8='
	emu_expect 400 BAD_BODY_ERR
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8= '"not-a-list"')"
	emu_expect 400 BAD_BODY_ERR

	std=$(emu_create_key std-key true)
	emu_api POST "/api/v2/keys/$std/actions/wrap" "$(wrap_body aGVsbG8=)"
	emu_expect 400 KEY_ROOT_REQ_ERR
	[ "$(body '.resources[0].reasons[0].status')" = 400 ]
}

@test "unwrap: AAD mismatch, corrupt or foreign ciphertext is 422 UNPROCESSABLE_CIPHERTEXT_ERR" {
	id=$(emu_create_key aad-root)
	other=$(emu_create_key other-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$(random_b64 32)" '["disk-1"]')"
	emu_expect 200
	ct=$(body .ciphertext)

	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct" '["disk-2"]')"
	emu_expect 422 UNPROCESSABLE_CIPHERTEXT_ERR
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 422 UNPROCESSABLE_CIPHERTEXT_ERR

	# Flip the first character of the sealed bytes: GCM must notice.
	corrupt=$(ciphertext_json "$ct" |
		jq -c '.ciphertext |= ((if .[0:1] == "A" then "B" else "A" end) + .[1:])' | base64 -w0)
	[ "$corrupt" != "$ct" ]
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$corrupt" '["disk-1"]')"
	emu_expect 422 UNPROCESSABLE_CIPHERTEXT_ERR
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body 'not-base64-at-all!' '["disk-1"]')"
	emu_expect 422 UNPROCESSABLE_CIPHERTEXT_ERR

	emu_api POST "/api/v2/keys/$other/actions/unwrap" "$(unwrap_body "$ct" '["disk-1"]')"
	emu_expect 422 UNPROCESSABLE_CIPHERTEXT_ERR

	# The hpcs LUKS2 token's binding (issue 25): the AAD is compared exactly,
	# letter case included; one wrapped without AAD does not unwrap with one.
	uuid=0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a10
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$(random_b64 32)" "[\"luks2-uuid:$uuid\"]")"
	emu_expect 200
	bound=$(body .ciphertext)
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$bound" "[\"luks2-uuid:${uuid^^}\"]")"
	emu_expect 422 UNPROCESSABLE_CIPHERTEXT_ERR
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$bound" "[\"luks2-uuid:$uuid\"]")"
	emu_expect 200
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$(random_b64 32)")"
	unbound=$(body .ciphertext)
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$unbound" "[\"luks2-uuid:$uuid\"]")"
	emu_expect 422 UNPROCESSABLE_CIPHERTEXT_ERR

	# And the genuine request still works.
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct" '["disk-1"]')"
	emu_expect 200
}

# --- KMS: rotation, states, deletion ----------------------------------------------

@test "rotate: old ciphertext still unwraps and comes back re-wrapped; second rotate is 409" {
	id=$(emu_create_key rot-root)
	pt=$(random_b64 32)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt" '["x"]')"
	ct1=$(body .ciphertext)
	v1=$(body .keyVersion.id)

	emu_api POST "/api/v2/keys/$id/actions/rotate"
	emu_expect 204
	[ -z "$EMU_BODY" ]
	emu_api GET "/api/v2/keys/$id"
	v2=$(body '.resources[0].keyVersion.id')
	[ "$v2" != "$v1" ]
	body '.resources[0].lastRotateDate'

	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct1" '["x"]')"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
	[ "$(body .keyVersion.id)" = "$v1" ]
	[ "$(body .rewrappedKeyVersion.id)" = "$v2" ]
	ct2=$(body .ciphertext)
	[ "$(ciphertext_json "$ct2" | jq -r .handle)" = "$v2" ]

	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct2" '["x"]')"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
	[ "$(body .keyVersion.id)" = "$v2" ]
	[ "$(body 'has("rewrappedKeyVersion")')" = false ]

	emu_api POST "/api/v2/keys/$id/actions/rewrap" "$(unwrap_body "$ct1" '["x"]')"
	emu_expect 200
	[ "$(body .rewrappedKeyVersion.id)" = "$v2" ]
	[ "$(ciphertext_json "$(body .ciphertext)" | jq -r .handle)" = "$v2" ]

	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt")"
	[ "$(body .keyVersion.id)" = "$v2" ]

	emu_api POST "/api/v2/keys/$id/actions/rotate" '{}'
	emu_expect 409 KEY_ROTATION_NOT_PERMITTED

	# The control API lifts the one-hour limit; version 1 still unwraps after two rotations.
	emu_ctl POST "keys/$id/allow-rotate" >/dev/null
	emu_api POST "/api/v2/keys/$id?action=rotate"
	emu_expect 204
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct1" '["x"]')"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
	[ "$(body .rewrappedKeyVersion.id)" != "$v2" ]
}

@test "states: suspended and pre-active keys refuse every action; a deactivated one still unwraps" {
	id=$(emu_create_key state-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	ct=$(body .ciphertext)
	for state in 0 2 3; do
		run emu_ctl POST "keys/$id/state" "{\"state\":$state}"
		[ "$status" -eq 0 ]
		[ "$(jq -r .state <<<"$output")" = "$state" ]
		emu_api GET "/api/v2/keys/$id"
		[ "$(body '.resources[0].state')" = "$state" ]
		emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
		emu_expect 409 KEY_ACTION_INVALID_STATE_ERR
		[ "$(body '.resources[0].reasons[0].status')" = 409 ]
		if [ "$state" = 3 ]; then
			# Expired (deactivated): unwrap and rewrap still work, wrap does not.
			emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
			emu_expect 200
			[ "$(body .plaintext)" = aGVsbG8= ]
			emu_api POST "/api/v2/keys/$id/actions/rewrap" "$(unwrap_body "$ct")"
			emu_expect 200
		else
			for action in unwrap rewrap; do
				emu_api POST "/api/v2/keys/$id/actions/$action" "$(unwrap_body "$ct")"
				emu_expect 409 KEY_ACTION_INVALID_STATE_ERR
			done
			emu_api POST "/api/v2/keys/$id/actions/rotate"
			emu_expect 409 KEY_ACTION_INVALID_STATE_ERR
		fi
	done
	emu_ctl POST "keys/$id/state" '{"state":1}' >/dev/null
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	[ "$(body .plaintext)" = aGVsbG8= ]

	run emu_ctl POST "keys/$id/state" '{"state":4}'
	[ "$status" -ne 0 ]
	run emu_ctl POST "keys/no-such-key/state" '{"state":1}'
	[ "$status" -ne 0 ]
}

@test "disable/enable: 204 each; a disabled key is state 2 and refuses unwrap; wrong state is 409" {
	id=$(emu_create_key able-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	ct=$(body .ciphertext)
	emu_api POST "/api/v2/keys/$id/actions/enable"
	emu_expect 409 KEY_ACTION_INVALID_STATE_ERR
	emu_api POST "/api/v2/keys/$id/actions/disable"
	emu_expect 204
	[ -z "$EMU_BODY" ]
	emu_api GET "/api/v2/keys/$id/metadata"
	[ "$(body '.resources[0].state')" = 2 ]
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 409 KEY_ACTION_INVALID_STATE_ERR
	[[ "$(body '.resources[0].errorMsg')" == "Conflict: Unwrap with key could not be performed:"* ]]
	emu_api POST "/api/v2/keys/$id/actions/disable"
	emu_expect 409 KEY_ACTION_INVALID_STATE_ERR
	emu_api POST "/api/v2/keys/$id/actions/enable"
	emu_expect 204
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	[ "$(emu_stat by_op.disable)" = 2 ]
	[ "$(emu_stat by_op.enable)" = 2 ]
	# A standard key has no disable action (root keys only).
	std=$(emu_create_key able-std true)
	emu_api POST "/api/v2/keys/$std/actions/disable"
	emu_expect 400 KEY_ROOT_REQ_ERR
}

@test "metadata: no key material; still readable after delete (state 5); 404 for unknown keys" {
	std=$(emu_create_key meta-std true "$(random_b64 32)")
	emu_api GET "/api/v2/keys/$std/metadata"
	emu_expect 200
	[ "$(body '.metadata.collectionType')" = "$KEY_TYPE" ]
	[ "$(body '.resources[0].id')" = "$std" ]
	[ "$(body '.resources[0] | has("payload")')" = false ]
	body '.resources[0].keyVersion.id'
	emu_api DELETE "/api/v2/keys/$std"
	emu_api GET "/api/v2/keys/$std/metadata"
	emu_expect 200
	[ "$(body '.resources[0].state')" = 5 ]
	[ "$(body '.resources[0].deleted')" = true ]
	emu_api GET "/api/v2/keys/no-such-key/metadata"
	emu_expect 404 KEY_NOT_FOUND_ERR
	emu_api POST "/api/v2/keys/$std/metadata" '{}'
	emu_expect 405
	[ "$(emu_stat by_op.metadata)" = 3 ]
}

@test "versions: newest first after each rotation; 409 when not active, 410 when deleted" {
	id=$(emu_create_key ver-root)
	emu_api GET "/api/v2/keys/$id/versions"
	emu_expect 200
	[ "$(body '.metadata.collectionType')" = application/vnd.ibm.kms.key.version+json ]
	[ "$(body '.metadata.collectionTotal')" = 1 ]
	v1=$(body '.resources[0].id')
	emu_api POST "/api/v2/keys/$id/actions/rotate"
	emu_expect 204
	emu_api GET "/api/v2/keys/$id/metadata"
	v2=$(body '.resources[0].keyVersion.id')
	[ "$v2" != "$v1" ]
	emu_api GET "/api/v2/keys/$id/versions"
	[ "$(body '[.resources[].id] | join(",")')" = "$v2,$v1" ]
	body '.resources[0].creationDate'

	emu_ctl POST "keys/$id/state" '{"state":2}' >/dev/null
	emu_api GET "/api/v2/keys/$id/versions"
	emu_expect 409 KEY_ACTION_INVALID_STATE_ERR
	emu_api GET "/api/v2/keys/$id/versions?allKeyStates=true"
	emu_expect 200
	[ "$(body '.metadata.collectionTotal')" = 2 ]
	emu_ctl POST "keys/$id/state" '{"state":5}' >/dev/null
	emu_api GET "/api/v2/keys/$id/versions"
	emu_expect 410 KEY_DELETED_ERR
	emu_api GET "/api/v2/keys/$id/versions?allKeyStates=true"
	emu_expect 200
}

@test "delete: 204, then 410 on get, wrap, unwrap and delete; Prefer: return=representation" {
	id=$(emu_create_key del-root)
	keep=$(emu_create_key keep-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	ct=$(body .ciphertext)

	emu_api DELETE "/api/v2/keys/$id"
	emu_expect 204
	[ -z "$EMU_BODY" ]
	emu_api GET "/api/v2/keys/$id"
	emu_expect 410
	[ "$(body '.resources[0].reasons[0].status')" = 410 ]
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	emu_expect 410
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 410
	emu_api DELETE "/api/v2/keys/$id"
	emu_expect 410

	emu_api GET /api/v2/keys
	[ "$(body '[.resources[].id] | join(",")')" = "$keep" ]
	emu_api GET "/api/v2/keys?state=5"
	[ "$(body '[.resources[].id] | join(",")')" = "$id" ]

	emu_api DELETE "/api/v2/keys/$keep" "" -H "Prefer: return=representation"
	emu_expect 200
	[ "$(body '.resources[0].id')" = "$keep" ]
	[ "$(body '.resources[0].state')" = 5 ]
	[ "$(body '.resources[0].deleted')" = true ]
}

# --- Persistence and shutdown -----------------------------------------------------

@test "restart: keys, key material, API keys, tokens and the CA survive; SIGTERM exits 0" {
	id=$(emu_create_key persist-root)
	pt=$(random_b64 32)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt")"
	ct=$(body .ciphertext)
	old_token=$EMU_TOKEN
	ca_sum=$(sha256sum <"$EMU_DIR/ca.pem")
	srv_sum=$(sha256sum <"$EMU_DIR/server.pem")
	[ "$(jq -r '.keys | length' "$EMU_DIR/state.json")" = 1 ]
	[ "$(stat -c %a "$EMU_DIR/state.json")" = 600 ]

	emulator_stop
	[ "$EMU_EXIT" -eq 0 ]
	[ ! -e "$EMU_DIR/port" ]
	grep -q stopped "$EMU_LOG"

	# Restart without --api-key: the key given last time is still accepted.
	api_key=$EMU_API_KEY
	EMU_API_KEY=""
	emulator_start --state-dir "$EMU_DIR"
	EMU_API_KEY=$api_key
	[ "$(sha256sum <"$EMU_DIR/ca.pem")" = "$ca_sum" ]
	[ "$(sha256sum <"$EMU_DIR/server.pem")" = "$srv_sum" ]

	EMU_TOKEN=$old_token # a token issued before the restart is still good
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
	EMU_TOKEN=$(emu_token "$api_key")
	emu_api GET "/api/v2/keys/persist-root"
	[ "$(body '.resources[0].id')" = "$id" ]
}

# --- Faults -----------------------------------------------------------------

@test "faults: status 429 with Retry-After for count requests of one op, then normal service" {
	id=$(emu_create_key fault-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	ct=$(body .ciphertext)
	emu_ctl POST reset-stats >/dev/null
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"status","status":429,"retry_after":1,"count":2}]}' >/dev/null

	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	emu_expect 200 # other ops are not affected
	for _ in 1 2; do
		emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
		emu_expect 429
		[ "$(header Retry-After)" = 1 ]
		[ "$(body .metadata.collectionType)" = "$ERROR_TYPE" ]
		[ "$(body '.resources[0].reasons[0].status')" = 429 ]
	done
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	[ "$(emu_ctl GET faults | jq -r '.rules[0].count')" = 0 ]
	[ "$(emu_stat by_op.unwrap)" = 3 ] # faulted requests count too

	# IAM faults answer in IAM's error format; count -1 means forever.
	emu_ctl POST faults '{"rules":[{"op":"iam","action":"status","status":503,"count":-1}]}' >/dev/null
	for _ in 1 2 3; do
		run emu_curl -w '\n%{http_code}' -d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=$EMU_API_KEY" \
			"$EMU_URL/identity/token"
		[ "${lines[1]}" = 503 ]
		[[ $(jq -r .errorCode <<<"${lines[0]}") == BXNIM* ]]
	done
	emu_ctl POST faults '{}' >/dev/null
	[ "$(emu_ctl GET faults | jq -c .rules)" = "[]" ]
	emu_token >/dev/null
}

@test "faults: drop closes the connection without a response; garbage is a 200 HTML page" {
	url=$EMU_URL/api/v2/keys
	auth=(-H "Authorization: Bearer $EMU_TOKEN" -H "Bluemix-Instance: $EMU_INSTANCE")
	emu_ctl POST faults '{"rules":[{"op":"any","action":"drop","count":1}]}' >/dev/null
	run emu_curl -o /dev/null -w '%{http_code}' "${auth[@]}" "$url"
	[ "$status" -eq 52 ] || [ "$status" -eq 56 ] # empty reply / connection cut
	[[ $output == *000* ]]
	run emu_curl -o /dev/null -w '%{http_code}' "${auth[@]}" "$url"
	[ "$output" = 200 ]

	emu_ctl POST faults '{"rules":[{"op":"iam","action":"garbage","count":1}]}' >/dev/null
	run emu_curl -D "$BATS_TEST_TMPDIR/h" -w '\n%{http_code}' \
		-d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=$EMU_API_KEY" "$EMU_URL/identity/token"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = 200 ]
	[[ $output == *"<html>"* ]]
	grep -qi '^content-type: text/html' "$BATS_TEST_TMPDIR/h"
	run jq . <<<"${lines[0]}"
	[ "$status" -ne 0 ]  # not JSON
	emu_token >/dev/null # the one-shot fault is used up
}

@test "faults: misnamed hides the answer's names, echo sends the request back, stream never ends" {
	emu_ctl POST faults '{"rules":[{"op":"iam","action":"misnamed","count":1}]}' >/dev/null
	run emu_curl -w '\n%{http_code}' \
		-d "grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=$EMU_API_KEY" "$EMU_URL/identity/token"
	[ "${lines[-1]}" = 200 ]
	jq -er .access_token_ <<<"${lines[0]}"
	run jq -er .access_token <<<"${lines[0]}"
	[ "$status" -eq 1 ]
	emu_token >/dev/null # used up

	crk=$(emu_create_key "echo-$RANDOM")
	emu_ctl POST faults '{"rules":[{"op":"wrap","action":"echo","count":1}]}' >/dev/null
	emu_api POST "/api/v2/keys/$crk/actions/wrap" '{"plaintext":"c2VjcmV0"}'
	emu_expect 200
	[ "$EMU_BODY" = '{"plaintext":"c2VjcmV0"}' ]

	emu_ctl POST faults '{"rules":[{"op":"list","action":"stream","count":1}]}' >/dev/null
	# More than any answer needs, and still going: 3 MB are read, then we hang up.
	head -c 3000000 < <(emu_curl -H "Authorization: Bearer $EMU_TOKEN" -H "Bluemix-Instance: $EMU_INSTANCE" \
		"$EMU_URL/api/v2/keys" 2>/dev/null) | wc -c | grep -qx 3000000
}

@test "faults: expire_tokens turns every earlier token into a 401; new tokens work" {
	emu_api GET /api/v2/keys
	emu_expect 200
	old=$EMU_TOKEN
	emu_ctl POST faults '{"expire_tokens":true}' >/dev/null
	emu_api GET /api/v2/keys
	emu_expect 401
	[ "$(body '.resources[0] | keys | join(",")')" = errorMsg ]
	EMU_TOKEN=$(emu_token)
	[ "$EMU_TOKEN" != "$old" ]
	emu_api GET /api/v2/keys
	emu_expect 200
}

@test "faults: expire_tokens voids the tokens so far, then serves the request (401)" {
	emu_ctl POST faults '{"rules":[{"op":"list","action":"expire_tokens","count":1}]}' >/dev/null
	emu_api GET "/api/v2/keys/no-such-key"
	emu_expect 404 # other ops are not affected
	emu_api GET /api/v2/keys
	emu_expect 401
	[ "$(body '.resources[0] | keys | join(",")')" = errorMsg ]
	emu_api GET "/api/v2/keys/no-such-key"
	emu_expect 401 # the token is void for every op now
	EMU_TOKEN=$(emu_token)
	emu_api GET /api/v2/keys
	emu_expect 200 # a new token works, and the rule is used up
	[ "$(emu_ctl GET faults | jq -r '.rules[0].count')" = 0 ]
}

@test "faults: wrong_plaintext changes the first byte of an unwrapped plaintext; unwrap only" {
	id=$(emu_create_key pt-root)
	pt=$(random_b64 32)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt")"
	ct=$(body .ciphertext)
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"wrong_plaintext","count":1}]}' >/dev/null
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	got=$(body .plaintext | base64 -d | od -An -tx1 -v | tr -d ' \n')
	want=$(base64 -d <<<"$pt" | od -An -tx1 -v | tr -d ' \n')
	[ "${#got}" -eq 64 ]
	[ "${got:0:2}" != "${want:0:2}" ]
	[ "${got:2}" = "${want:2}" ]
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
	run emu_ctl POST faults '{"rules":[{"op":"wrap","action":"wrong_plaintext"}]}'
	[ "$status" -ne 0 ]
	[[ $output == *"only goes with op unwrap"* ]]
}

@test "faults: pass serves its requests as usual, so the next rule reaches later ones" {
	id=$(emu_create_key pass-root)
	pt=$(random_b64 32)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt")"
	ct=$(body .ciphertext)
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"pass","count":2},
		{"op":"unwrap","action":"status","status":503,"count":1}]}' >/dev/null
	for _ in 1 2; do
		emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
		emu_expect 200
		[ "$(body .plaintext)" = "$pt" ]
	done
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 503
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
}

@test "faults: a rule with aad takes only the requests whose aad list holds that string" {
	id=$(emu_create_key aad-root)
	pt=$(random_b64 32)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt" '["luks2-uuid:a"]')"
	ct_a=$(body .ciphertext)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt" '["luks2-uuid:b"]')"
	ct_b=$(body .ciphertext)
	emu_ctl POST faults '{"rules":[{"op":"unwrap","aad":"luks2-uuid:b","action":"status","status":503,"count":1}]}' >/dev/null
	# Another AAD, and none, pass by; the rule's count is left.
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct_a" '["luks2-uuid:a"]')"
	emu_expect 200
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body "$pt")"
	emu_expect 200
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$(body .ciphertext)")"
	emu_expect 200
	[ "$(emu_ctl GET faults | jq '.rules[0].count')" -eq 1 ]
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct_b" '["luks2-uuid:b"]')"
	emu_expect 503
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct_b" '["luks2-uuid:b"]')"
	emu_expect 200
	[ "$(body .plaintext)" = "$pt" ]
	# Not a string: refused, the fault set kept.
	run emu_ctl POST faults '{"rules":[{"op":"unwrap","aad":["x"],"action":"drop"}]}'
	[ "$status" -ne 0 ]
	[[ $output == *'aad must be a string'* ]]
	[ "$(emu_ctl GET faults | jq -r '.rules[0].aad')" = luks2-uuid:b ]
}

@test "control: GET tokens lists every access token issued" {
	first=$EMU_TOKEN
	second=$(emu_token)
	[ "$second" != "$first" ]
	[ "$(emu_tokens | tr '\n' ' ')" = "$first $second " ]
}

@test "faults: bad fault specifications are refused and leave the fault set alone" {
	emu_ctl POST faults '{"rules":[{"op":"wrap","action":"drop","count":3}]}' >/dev/null
	for bad in '{"rules":[{"op":"nope","action":"drop"}]}' \
		'{"rules":[{"op":"wrap","action":"explode"}]}' \
		'{"rules":[{"op":"wrap","action":"status"}]}' \
		'{"latency":5}' '{"latency_ms":-1}' 'not json'; do
		run emu_ctl POST faults "$bad"
		[ "$status" -ne 0 ]
		[[ $output == *'"error"'* ]]
	done
	[ "$(emu_ctl GET faults | jq -c '.rules[0] | [.op, .action, .count]')" = '["wrap","drop",3]' ]
}

# --- Stats, keep-alive and concurrency ---------------------------------------

@test "stats: counts per op, connections reused by keep-alive, control requests not counted" {
	id=$(emu_create_key stats-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	ct=$(body .ciphertext)
	run emu_ctl POST reset-stats
	[ "$(jq -c '[.requests, .connections, .max_concurrent, .iam_requests, .kms_requests, .by_op.list]' <<<"$output")" = "[0,0,0,0,0,0]" ]

	# One curl, three requests: one kept-alive connection.
	auth=(-H "Authorization: Bearer $EMU_TOKEN" -H "Bluemix-Instance: $EMU_INSTANCE")
	run emu_curl -o /dev/null -o /dev/null -o /dev/null "${auth[@]}" \
		"$EMU_URL/api/v2/keys" "$EMU_URL/api/v2/keys?limit=1" "$EMU_URL/api/v2/keys/$id"
	[ "$status" -eq 0 ]
	[ "$(emu_stat requests)" = 3 ]
	[ "$(emu_stat by_op.list)" = 2 ]
	[ "$(emu_stat by_op.get)" = 1 ]
	[ "$(emu_stat connections)" = 1 ]

	# Requests on a reused connection are not held up (one write per
	# response, TCP_NODELAY): 20 of them stay far below 20 x 40 ms, the
	# Nagle / delayed-ACK stall that two writes per response would cost.
	urls=()
	for _ in $(seq 20); do urls+=("$EMU_URL/_emulator/stats"); done
	start=$(now_ms)
	emu_curl -o /dev/null "${urls[@]}" >/dev/null
	[ $(($(now_ms) - start)) -lt 600 ]

	emu_token >/dev/null
	for _ in 1 2; do
		emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
		emu_expect 200
	done
	run emu_ctl GET stats
	[ "$(jq -c '[.requests, .iam_requests, .kms_requests, .by_op.unwrap, .by_op.iam, .connections]' <<<"$output")" = "[6,1,5,2,1,4]" ]
	[ "$(jq -r .max_concurrent <<<"$output")" = 1 ] # all of it was sequential
}

@test "stats: max_concurrent > 1 for parallel requests under latency; control API has none" {
	emu_ctl POST faults '{"latency_ms":500}' >/dev/null
	emu_ctl POST reset-stats >/dev/null
	start=$(now_ms)
	pids=()
	for i in 1 2 3 4; do
		emu_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $EMU_TOKEN" \
			-H "Bluemix-Instance: $EMU_INSTANCE" "$EMU_URL/api/v2/keys" >"$BATS_TEST_TMPDIR/par.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	elapsed=$(($(now_ms) - start))
	for i in 1 2 3 4; do
		[ "$(cat "$BATS_TEST_TMPDIR/par.$i")" = 200 ]
	done
	# Four 500 ms requests: at least 500 ms in all, far less than 2 s serially.
	[ "$elapsed" -ge 500 ]
	[ "$elapsed" -lt 1500 ]
	[ "$(emu_stat max_concurrent)" -ge 2 ]
	[ "$(emu_stat requests)" = 4 ]

	start=$(now_ms)
	emu_ctl GET stats >/dev/null
	[ $(($(now_ms) - start)) -lt 500 ]

	# --latency-ms on the command line delays requests the same way.
	emulator_stop
	emulator_start --latency-ms 300
	start=$(now_ms)
	emu_token >/dev/null
	[ $(($(now_ms) - start)) -ge 300 ]
}

@test "rate limit: a bucket lets its burst through, then 429 with Retry-After; buckets refill" {
	emu_ctl POST rate-limit '{"rate": 2, "burst": 3}' >/dev/null
	local i codes=""
	for i in 1 2 3 4 5; do
		codes+="$(emu_curl -o "$BATS_TEST_TMPDIR/iam$i" -D "$BATS_TEST_TMPDIR/h$i" -w '%{http_code}' \
			--data 'grant_type=urn:ibm:params:oauth:grant-type:apikey' \
			--data-urlencode "apikey=$EMU_API_KEY" "$EMU_URL/identity/token") "
	done
	[ "$codes" = "200 200 200 429 429 " ]
	grep -qi '^Retry-After: [1-9]' "$BATS_TEST_TMPDIR/h4"
	[ "$(jq -r .errorCode "$BATS_TEST_TMPDIR/iam4")" = BXNIM0429E ]
	# The key endpoints of an instance have their own bucket: still served.
	emu_api GET /api/v2/keys
	emu_expect 200
	# After a refill the IAM bucket serves again.
	sleep 1.1
	run emu_token
	[ "$status" -eq 0 ]
	[ -n "$output" ]
	run emu_ctl GET rate-limit
	[ "$(jq -r '.served, .refused' <<<"$output" | tr '\n' ' ')" = "5 2 " ]
}

@test "rate limit: per instance, KMS 429 body of the service's kind, counters, off again" {
	EMU_INSTANCE="" emulator_stop
	EMU_INSTANCE="" emulator_start --rate-limit 1 --rate-burst 2
	EMU_TOKEN=$(emu_token)
	EMU_INSTANCE=inst-a
	emu_api GET /api/v2/keys
	emu_expect 200
	emu_api GET /api/v2/keys
	emu_expect 200
	emu_api GET /api/v2/keys
	emu_expect 429 TOO_MANY_REQUESTS_ERR
	[ "$(header Retry-After)" -ge 1 ]
	# Another instance has a full bucket of its own.
	EMU_INSTANCE=inst-b
	emu_api GET /api/v2/keys
	emu_expect 200
	[ "$(emu_stat rate_limit.refused)" -eq 1 ]
	[ "$(emu_stat rate_limit.served)" -ge 4 ]
	[ "$(emu_stat by_op.list)" -eq 4 ]
	# Turned off at run time: the drained bucket no longer matters.
	emu_ctl POST rate-limit '{"rate": 0}' >/dev/null
	EMU_INSTANCE=inst-a
	for _ in 1 2 3 4; do
		emu_api GET /api/v2/keys
		emu_expect 200
	done
	run emu_ctl POST rate-limit '{"rate": -1}'
	[ "$status" -ne 0 ]
	run emu_ctl POST rate-limit '{"rate": 1, "bogus": 2}'
	[ "$status" -ne 0 ]
}

# --- The VPC instance metadata service (--metadata-bind) ------------------------

@test "metadata service: both API versions: identity token, then an IAM token of the default profile, over plain HTTP" {
	[[ $EMU_MD_URL == http://127.0.0.1:* ]]
	for v in 2022-03-01 2025-08-25 2025-08-26 "$(date -u +%F)"; do
		md_identity "$v" '{"expires_in": 600}'
		it=$MD_IT
		jq -e '(keys == ["access_token","created_at","expires_at","expires_in"]) and .expires_in == 600' \
			<<<"$MD_BODY"
		created=$(date -d "$(jq -r .created_at <<<"$MD_BODY")" +%s)
		expires=$(date -d "$(jq -r .expires_at <<<"$MD_BODY")" +%s)
		[ $((expires - created)) -ge 600 ]
		[ $((expires - created)) -le 601 ]
		md_iam "$it" "" "$v"
		md_expect 200
		jq -e '(keys == ["access_token","created_at","expires_at","expires_in"]) and .expires_in == 3600' \
			<<<"$MD_BODY"
		claims=$(jwt_claims "$(jq -r .access_token <<<"$MD_BODY")")
		jq -e --arg p "$P_DEF" '.sub == $p and .sub_type == "Profile" and .iam_id == "iam-" + $p
			and .grant_type == "urn:ibm:params:oauth:grant-type:cr-token" and .exp - .iat >= 3600' <<<"$claims"
	done
	# The default lifetime is 300 s; an empty body is {}.
	md_identity 2022-03-01
	[ "$(jq .expires_in <<<"$MD_BODY")" = 300 ]
	md PUT "/instance_identity/v1/token?version=2022-03-01" "" -H 'Metadata-Flavor: ibm'
	md_expect 200
	[ "$(jq .expires_in <<<"$MD_BODY")" = 300 ]
	# The /identity/v1 methods serve every version (IBM's Go SDK core sends
	# 2022-03-01 to /identity/v1/iam_tokens); the identity token is no IAM token.
	md_identity 2022-03-01
	it=$MD_IT
	md POST "/identity/v1/iam_tokens?version=2022-03-01" "" -H "Authorization: Bearer $it"
	md_expect 200
	[ "$(jwt_claims "$it" | jq -r '.iaas.instanceID | length > 0')" = true ]
	[ "$(jwt_claims "$it" | jq -r .sub_type)" = null ]
}

@test "metadata service: the version parameter is required, a date from 2022-03-01 to today; old paths are 404 from 2025-08-26" {
	for q in "" "?version=" "?other=1"; do
		md PUT "/identity/v1/token$q" '{}' -H 'Metadata-Flavor: ibm'
		md_expect 400 missing_field version
	done
	for v in 2022-3-1 yesterday 2022-02-30 2022-02-28 2021-09-20 "$(date -u -d tomorrow +%F)"; do
		md PUT "/identity/v1/token?version=$v" '{}' -H 'Metadata-Flavor: ibm'
		md_expect 400 invalid_value version
		[ "$(jq -r '.errors[0].target.type' <<<"$MD_BODY")" = query ]
	done
	md_identity 2025-08-25
	it=$MD_IT
	md PUT "/instance_identity/v1/token?version=2025-08-26" '{}' -H 'Metadata-Flavor: ibm'
	md_expect 404 not_found
	md_iam "$it" "" 2025-08-26
	md_expect 200
	md POST "/instance_identity/v1/iam_token?version=2025-08-26" "" -H "Authorization: Bearer $it"
	md_expect 404 not_found
	# Unknown paths, wrong methods, and the control API is not served here.
	md GET "/identity/v1/token?version=2025-08-26"
	md_expect 405 method_not_allowed
	md POST "/metadata/v1/instance?version=2025-08-26" '{}'
	md_expect 404 not_found
	md GET /_emulator/stats
	md_expect 404 not_found
}

@test "metadata service: Metadata-Flavor: ibm is required on the token call; expires_in 5..3600; malformed and unknown fields" {
	md PUT "/identity/v1/token?version=2025-08-26" '{}'
	md_expect 400 missing_value Metadata-Flavor
	[ "$(jq -r '.errors[0].target.type' <<<"$MD_BODY")" = header ]
	for flavor in google IBM "ibm2"; do
		md PUT "/identity/v1/token?version=2025-08-26" '{}' -H "Metadata-Flavor: $flavor"
		md_expect 400 invalid_value Metadata-Flavor
	done
	for n in 5 3600; do
		md_identity 2025-08-26 "{\"expires_in\": $n}"
		[ "$(jq .expires_in <<<"$MD_BODY")" = "$n" ]
	done
	for n in 4 3601 0 -1 1.5 '"60"' true null; do
		md PUT "/identity/v1/token?version=2025-08-26" "{\"expires_in\": $n}" -H 'Metadata-Flavor: ibm'
		md_expect 400 invalid_value expires_in
		[[ $(jq -r '.errors[0].message' <<<"$MD_BODY") == *'between `5` and `3600`'* ]]
	done
	for bad in '{"expires_in": 60' '[300]' 'expires_in=300'; do
		md PUT "/identity/v1/token?version=2025-08-26" "$bad" -H 'Metadata-Flavor: ibm'
		md_expect 400 invalid_request
	done
	md PUT "/identity/v1/token?version=2025-08-26" '{"xyzzy": 1}' -H 'Metadata-Flavor: ibm'
	md_expect 400 unknown_field xyzzy
	# A nonce (2026-06-23) goes into the signed token.
	md_identity 2025-08-26 '{"nonce": "n-42"}'
	it=$MD_IT
	[ "$(jwt_claims "$it" | jq -r .nonce)" = n-42 ]
	# The IAM token call needs no Metadata-Flavor (IBM's Go SDK core sends none).
	md_iam "$it" "" 2025-08-26
	md_expect 200
}

@test "metadata service: the IAM token call needs a valid identity token: missing, wrong, an IAM token, expired (expires_in 5)" {
	md POST "/identity/v1/iam_tokens?version=2025-08-26" ""
	md_expect 400 missing_value Authorization
	for auth in "Bearer nonsense" "Basic Zm9vOmJhcg==" "Bearer $EMU_TOKEN"; do
		md POST "/identity/v1/iam_tokens?version=2025-08-26" "" -H "Authorization: $auth"
		md_expect 401 unauthenticated
	done
	md_identity 2025-08-26
	it=$MD_IT
	tampered=$(cut -d. -f1,2 <<<"$it").$(cut -d. -f3 <<<"$EMU_TOKEN")
	md_iam "$tampered" "" 2025-08-26
	md_expect 401 unauthenticated
	md_identity 2025-08-26 '{"expires_in": 5}'
	short=$MD_IT
	md_iam "$short" "" 2025-08-26
	md_expect 200
	sleep 6
	md_iam "$short" "" 2025-08-26
	md_expect 401 unauthenticated
	md_iam "$it" "" 2025-08-26 # the 300 s one still works
	md_expect 200
}

@test "metadata service: trusted profile by id, crn or name; both, neither, unknown, unlinked; no default profile" {
	md_identity
	it=$MD_IT
	for ref in "{\"id\": \"$P_NOROLE\"}" "{\"crn\": \"$P_CRN\"}" '{"name": "no-role"}'; do
		md_iam "$it" "{\"trusted_profile\": $ref}"
		md_expect 200
		[ "$(jwt_claims "$(jq -r .access_token <<<"$MD_BODY")" | jq -r .sub)" = "$P_NOROLE" ]
	done
	md_iam "$it" '{}' # no trusted_profile: the default
	md_expect 200
	md_iam "$it" "{\"trusted_profile\": {\"id\": \"$P_DEF\", \"crn\": \"$P_CRN\"}}"
	md_expect 400 invalid_value trusted_profile
	md_iam "$it" '{"trusted_profile": {}}'
	md_expect 400 missing_field trusted_profile
	for bad in '{"trusted_profile": "Profile-x"}' '{"trusted_profile": {"id": ""}}' \
		'{"trusted_profile": {"id": 7}}'; do
		md_iam "$it" "$bad"
		md_expect 400 invalid_value
	done
	md_iam "$it" '{"trusted_profile": {"profile": "x"}}'
	md_expect 400 unknown_field profile
	md_iam "$it" '{"profile_id": "x"}'
	md_expect 400 unknown_field profile_id
	md_iam "$it" '{"trusted_profile": {"id": "Profile-nobody"}}'
	md_expect 400 not_found trusted_profile.id
	md_iam "$it" "{\"trusted_profile\": {\"id\": \"$P_UNLINKED\"}}"
	md_expect 400 profile_not_linked
	md_iam "$it" '{"trusted_profile": {'
	md_expect 400 invalid_request
	# No default profile: the body must name one.
	emu_ctl POST default-profile '{"id": null}' >/dev/null
	md_iam "$it" ""
	md_expect 400 missing_field trusted_profile
	[[ $(jq -r '.errors[0].message' <<<"$MD_BODY") == *"trusted profile ID was not passed"* ]]
	md_iam "$it" "{\"trusted_profile\": {\"id\": \"$P_DEF\"}}"
	md_expect 200
	# A default profile that is unlinked is refused like any unlinked one.
	emu_ctl POST default-profile "{\"id\": \"$P_UNLINKED\"}" >/dev/null
	md_iam "$it" ""
	md_expect 400 profile_not_linked
}

@test "metadata service: Key Protect takes the IAM token of a profile with a role, refuses one without (401); roles count at once" {
	id=$(emu_create_key md-root)
	emu_api POST "/api/v2/keys/$id/actions/wrap" "$(wrap_body aGVsbG8=)"
	emu_expect 200
	ct=$(body .ciphertext)
	md_identity
	it=$MD_IT
	md_iam "$it"
	EMU_TOKEN=$(jq -r .access_token <<<"$MD_BODY")
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	[ "$(body .plaintext)" = aGVsbG8= ]
	# The identity token itself is no IAM token.
	EMU_TOKEN=$it
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 401
	[ "$(body '.resources[0] | keys | join(",")')" = errorMsg ]
	md_iam "$it" "{\"trusted_profile\": {\"id\": \"$P_NOROLE\"}}"
	md_expect 200
	EMU_TOKEN=$(jq -r .access_token <<<"$MD_BODY")
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 401
	[ "$(body '.resources[0].errorMsg')" = "Unauthorized: The user does not have access to the specified resource" ]
	# Granted a role: the same token now works; taken away again: refused.
	emu_ctl POST "profiles/$P_NOROLE" '{"kp_role": true}' >/dev/null
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 200
	emu_ctl POST "profiles/$P_NOROLE" '{"kp_role": false}' >/dev/null
	emu_api POST "/api/v2/keys/$id/actions/unwrap" "$(unwrap_body "$ct")"
	emu_expect 401
	# The IAM token lives --token-ttl; expire_tokens voids both kinds of token.
	emu_ctl POST faults '{"expire_tokens": true}' >/dev/null
	md_iam "$it"
	md_expect 401 unauthenticated
	emu_tokens | grep -qxF "$it"
}

@test "metadata service: stats count it apart (no API-key IAM request); fault rules name md_token and md_iam_token, any leaves them alone" {
	emu_ctl POST reset-stats >/dev/null
	md_identity
	it=$MD_IT
	md_iam "$it"
	md_expect 200
	md_iam "$it"
	md GET /nowhere
	run emu_ctl GET stats
	jq -e '.metadata_requests == 4 and .by_op.md_token == 1 and .by_op.md_iam_token == 2
		and .by_op.md_other == 1 and .iam_requests == 0 and .requests == 0 and .by_op.iam == 0
		and .metadata_connections == 4 and .connections == 0' <<<"$output"
	# One curl, two requests: one kept-alive connection.
	emu_ctl POST reset-stats >/dev/null
	curl -sS -o /dev/null -o /dev/null -X PUT -H 'Metadata-Flavor: ibm' \
		"$EMU_MD_URL/identity/v1/token?version=2025-08-26" "$EMU_MD_URL/identity/v1/token?version=2025-08-26"
	[ "$(emu_stat metadata_connections)" = 1 ]
	[ "$(emu_stat metadata_requests)" = 2 ]

	emu_ctl POST faults '{"rules": [{"op": "any", "action": "status", "status": 503},
		{"op": "md_iam_token", "action": "status", "status": 500, "count": 1},
		{"op": "md_iam_token", "action": "delay", "delay_ms": 700, "count": 1}]}' >/dev/null
	md_iam "$it"
	md_expect 500 service_error
	start=$(now_ms)
	md_iam "$it"
	md_expect 200
	[ $(($(now_ms) - start)) -ge 700 ]
	md_identity # "any" is the HTTPS API's: not the metadata service's
	run emu_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $EMU_TOKEN" \
		-H "Bluemix-Instance: $EMU_INSTANCE" "$EMU_URL/api/v2/keys"
	[ "$output" = 503 ]
	emu_ctl POST faults '{"rules": [{"op": "md_token", "action": "drop", "count": 1},
		{"op": "md_token", "action": "status", "status": 429, "count": 1}]}' >/dev/null
	run curl -sS -X PUT -H 'Metadata-Flavor: ibm' "$EMU_MD_URL/identity/v1/token?version=2025-08-26"
	[ "$status" -eq 52 ] # empty reply
	md PUT "/identity/v1/token?version=2025-08-26" '{}' -H 'Metadata-Flavor: ibm'
	md_expect 429
	run emu_ctl POST faults '{"rules": [{"op": "md_token", "action": "delay"}]}'
	[ "$status" -ne 0 ]
	run emu_ctl POST faults '{"rules": [{"op": "md_token", "action": "drop", "delay_ms": 5}]}'
	[ "$status" -ne 0 ]
}

@test "metadata service: control API: profiles and the default change at run time and persist; turned off, connections are refused" {
	run emu_ctl GET profiles
	jq -e --arg d "$P_DEF" '.default_profile == $d and (.profiles | length) == 3
		and (.profiles[] | select(.id == $d) | .linked and .kp_role
			and (.crn | endswith("::profile:" + $d)))' <<<"$output"
	md_identity
	it=$MD_IT
	emu_ctl POST "profiles/$P_DEF" '{"linked": false}' >/dev/null
	md_iam "$it"
	md_expect 400 profile_not_linked
	emu_ctl POST profiles/Profile-new '{"crn": "crn:v1:x::profile:Profile-new", "default": true}' >/dev/null
	md_iam "$it"
	md_expect 200
	[ "$(jwt_claims "$(jq -r .access_token <<<"$MD_BODY")" | jq -r .sub)" = Profile-new ]
	run emu_ctl POST profiles/Profile-new '{"linked": "no"}'
	[ "$status" -ne 0 ]
	run emu_ctl POST profiles/Profile-new '{"colour": "red"}'
	[ "$status" -ne 0 ]
	run emu_ctl POST default-profile '{"id": "Profile-nobody"}'
	[ "$status" -ne 0 ]
	# Persisted: a restart on the same state keeps profiles and default.
	emulator_stop
	emulator_start --state-dir "$EMU_DIR" --metadata-bind 127.0.0.1
	run emu_ctl GET profiles
	jq -e '.default_profile == "Profile-new" and (.profiles | length) == 4' <<<"$output"
	md_iam "$it" # and the identity token survives the restart until it expires
	md_expect 200
	emu_ctl DELETE profiles/Profile-new >/dev/null
	[ "$(emu_ctl GET profiles | jq -c '[.default_profile, (.profiles | length)]')" = '[null,3]' ]

	# Off: the address refuses connections, a kept-alive one ends; on again.
	port=$EMU_MD_PORT
	[ "$(emu_ctl POST metadata '{"enabled": false}' | jq -c '[.enabled, .port]')" = "[false,$port]" ]
	run curl -sS -X PUT -H 'Metadata-Flavor: ibm' "$EMU_MD_URL/identity/v1/token?version=2025-08-26"
	[ "$status" -eq 7 ]
	[ "$(emu_ctl POST metadata '{"enabled": true}' | jq -c '[.enabled, .port]')" = "[true,$port]" ]
	md_identity
	run emu_ctl POST metadata '{"enabled": "yes"}'
	[ "$status" -ne 0 ]
}

@test "metadata service: command line: --trusted-profile specs; the service is off without --metadata-bind" {
	emulator_stop
	for bad in "--trusted-profile ,default" "--trusted-profile P1,colour=red" \
		"--trusted-profile P1,default --trusted-profile P2,default" "--metadata-port 8080" \
		"--metadata-port-file $BATS_TEST_TMPDIR/x"; do
		# shellcheck disable=SC2086  # bad is a list of words
		run "$EMU_BIN" --state-dir "$BATS_TEST_TMPDIR/bad" $bad
		[ "$status" -eq 2 ]
	done
	emulator_start --trusted-profile "P1,crn=crn:v1:p1,name=one,unlinked,norole,default"
	[ -z "$EMU_MD_URL" ]
	run emu_ctl GET profiles
	jq -e '.default_profile == "P1" and .profiles == [{"id": "P1", "name": "one",
		"crn": "crn:v1:p1", "linked": false, "kp_role": false}]' <<<"$output"
	[ "$(emu_ctl GET metadata | jq -c .)" = '{"enabled":false,"bind":null,"port":null}' ]
	run emu_ctl POST metadata '{"enabled": true}'
	[ "$status" -ne 0 ]
	# Given again, the command line's word replaces the stored profile.
	emulator_stop
	emulator_start --state-dir "$EMU_DIR" --trusted-profile P1
	run emu_ctl GET profiles
	jq -e '.default_profile == "P1" and .profiles[0].linked and .profiles[0].kp_role
		and .profiles[0].name == "P1"' <<<"$output"
}

@test "metadata service: at 169.254.169.254:80 in a network namespace, as on an instance" {
	[ "$(id -u)" -eq 0 ] || skip "needs root for a network namespace"
	command -v unshare >/dev/null || skip "needs unshare (util-linux)"
	emulator_stop
	run timeout 60 unshare --net bash -c '
		set -e
		ip link set lo up
		ip addr add 169.254.169.254/32 dev lo
		mkdir -p "$2"
		"$1" --state-dir "$2" --port-file "$2/port" --metadata-bind 169.254.169.254 \
			--metadata-port 80 --trusted-profile Profile-ns,default >"$2/log" 2>&1 3>&- &
		pid=$!
		for _ in $(seq 100); do [ -s "$2/port" ] && break; sleep 0.1; done
		it=$(curl -sS -X PUT -H "Metadata-Flavor: ibm" -d "{\"expires_in\": 60}" \
			"http://169.254.169.254/instance_identity/v1/token?version=2022-03-01" | jq -er .access_token)
		curl -sS -X POST -H "Authorization: Bearer $it" \
			"http://169.254.169.254/instance_identity/v1/iam_token?version=2022-03-01" | jq -er .expires_in
		kill "$pid"
		wait "$pid"' _ "$EMU_BIN" "$BATS_TEST_TMPDIR/ns"
	[ "$status" -eq 0 ]
	[ "$output" = 3600 ]
	grep -q 'metadata service on http://169.254.169.254:80' "$BATS_TEST_TMPDIR/ns/log"
}
