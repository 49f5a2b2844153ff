/* Smoke test for the static dependency build (cmake/StaticDeps.cmake).
 *
 * Linked with -static against every hpcs_static:: target, it checks that each
 * library works, not only that it links:
 *   - libcurl: built with mbedTLS, c-ares and nghttp2; an HTTPS GET to URL
 *     succeeds when verified against CA and fails with CURLE_PEER_FAILED_VERIFICATION
 *     against the default CA bundle;
 *   - c-ares: the DNS servers it read from /etc/resolv.conf are printed
 *     ("dns-servers: ...") for the caller to compare;
 *   - cJSON + mbedcrypto: parse a Key Protect-like response, base64-decode it;
 *   - libtspi: Tspi_Context_Create/Close (needs no TPM, no tcsd);
 *   - libkeyutils: its version string.
 *
 * usage: smoke CA URL [URL...]    exit 0 when every check passed, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <keyutils.h>
#include <mbedtls/base64.h>
#include <mbedtls/version.h>
#include <nghttp2/nghttp2ver.h>
#include <tss/tspi.h>

static int failures;

static void check(int ok, const char* what) {
  printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) failures++;
}

struct buf {
  char data[16384];
  size_t len;
};

static size_t on_data(char* p, size_t size, size_t n, void* userdata) {
  struct buf* b = userdata;
  size_t room = sizeof(b->data) - 1 - b->len;
  size_t take = size * n < room ? size * n : room;
  memcpy(b->data + b->len, p, take);
  b->len += take;
  b->data[b->len] = '\0';
  return size * n;
}

/* GET url; cafile NULL means the CA bundle compiled into libcurl. */
static CURLcode https_get(const char* url, const char* cafile, long* status, struct buf* body) {
  CURL* h = curl_easy_init();
  if (!h) return CURLE_FAILED_INIT;
  char errbuf[CURL_ERROR_SIZE] = "";
  body->len = 0;
  body->data[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  if (cafile) curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
  CURLcode rc = curl_easy_perform(h);
  *status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  printf("  GET %s (CA %s): curl %d%s%s, HTTP %ld\n", url, cafile ? cafile : "default bundle",
         (int)rc, *errbuf ? ": " : "", errbuf, *status);
  curl_easy_cleanup(h);
  return rc;
}

static void check_curl_build(void) {
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  printf("  libcurl %s, %s, c-ares %s, nghttp2 %s\n", v->version, v->ssl_version,
         v->ares ? v->ares : "-", v->nghttp2_version ? v->nghttp2_version : "-");
  check(strncmp(v->ssl_version, "mbedTLS/", 8) == 0, "libcurl TLS is mbedTLS");
  check((v->features & CURL_VERSION_ASYNCHDNS) && v->ares != NULL,
        "libcurl resolves names with c-ares");
  check((v->features & CURL_VERSION_HTTP2) != 0, "libcurl speaks HTTP/2");
  check(!(v->features & CURL_VERSION_LIBZ) && !(v->features & CURL_VERSION_IDN) &&
            !(v->features & CURL_VERSION_NTLM) && !(v->features & CURL_VERSION_GSSAPI),
        "libcurl has no zlib, IDN, NTLM, GSSAPI");
  int only_http = 1;
  for (const char* const* p = v->protocols; *p; p++) {
    printf("  protocol %s\n", *p);
    if (strcmp(*p, "http") != 0 && strcmp(*p, "https") != 0) only_http = 0;
  }
  check(only_http, "libcurl protocols are http and https only");
}

static void check_ares_servers(void) {
  ares_channel ch;
  struct ares_addr_node* servers = NULL;
  int rc = ares_init(&ch);
  check(rc == ARES_SUCCESS, "c-ares channel initialised");
  if (rc != ARES_SUCCESS) return;
  rc = ares_get_servers(ch, &servers);
  printf("dns-servers:");
  for (struct ares_addr_node* s = servers; s; s = s->next) {
    char ip[64] = "?";
    ares_inet_ntop(s->family, &s->addr, ip, sizeof ip);
    printf(" %s", ip);
  }
  printf("\n");
  check(rc == ARES_SUCCESS && servers != NULL, "c-ares read DNS servers");
  ares_free_data(servers);
  ares_destroy(ch);
}

static void check_json_and_mbedcrypto(void) {
  /* The shape of a Key Protect unwrap response. */
  static const char json[] =
      "{\"plaintext\":\"aHBjcy1zbW9rZS1rZXk=\",\"keyVersion\":{\"id\":\"x\"}}";
  cJSON* root = cJSON_Parse(json);
  const cJSON* pt = cJSON_GetObjectItemCaseSensitive(root, "plaintext");
  check(cJSON_IsString(pt), "cJSON parsed the plaintext field");
  if (cJSON_IsString(pt)) {
    unsigned char out[64];
    size_t n = 0;
    const char* s = pt->valuestring;
    int rc = mbedtls_base64_decode(out, sizeof out, &n, (const unsigned char*)s, strlen(s));
    check(rc == 0 && n == 14 && memcmp(out, "hpcs-smoke-key", 14) == 0,
          "mbedcrypto base64-decoded it");
  }
  cJSON_Delete(root);
}

static void check_tspi(void) {
  TSS_HCONTEXT ctx = 0;
  TSS_RESULT rc = Tspi_Context_Create(&ctx);
  printf("  Tspi_Context_Create: 0x%x\n", (unsigned)rc);
  check(rc == TSS_SUCCESS && ctx != 0, "libtspi created a context");
  if (rc == TSS_SUCCESS) {
    rc = Tspi_Context_Close(ctx);
    check(rc == TSS_SUCCESS, "libtspi closed it");
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CA URL [URL...]\n", argv[0]);
    return 2;
  }
  const char* ca = argv[1];

  char mbed[32];
  mbedtls_version_get_string(mbed); /* 2.28: at least 9 bytes */
  printf("  mbedTLS %s, c-ares %s, nghttp2 %s, keyutils %s\n", mbed, ares_version(NULL),
         NGHTTP2_VERSION, keyutils_version_string);

  check(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "curl_global_init");
  check_curl_build();
  check_ares_servers();

  struct buf body;
  long status;
  for (int i = 2; i < argc; i++) {
    char what[512];
    CURLcode rc = https_get(argv[i], ca, &status, &body);
    snprintf(what, sizeof what, "HTTPS GET %s verified against the test CA", argv[i]);
    /* openssl s_server -www answers with a page describing the TLS session. */
    check(rc == CURLE_OK && status == 200 && strstr(body.data, "Ciphers") != NULL, what);
  }
  CURLcode rc = https_get(argv[2], NULL, &status, &body);
  check(rc == CURLE_PEER_FAILED_VERIFICATION,
        "the same GET against the default CA bundle is refused");
  curl_global_cleanup();

  check_json_and_mbedcrypto();
  check_tspi();

  printf("%s\n", failures ? "SMOKE FAILED" : "SMOKE PASSED");
  return failures ? 1 : 0;
}
