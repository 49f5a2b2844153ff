/*
 * tspi-openssl-shim.c: the OpenSSL functions that libtspi (trousers 0.3.15)
 * needs in the static hpcs-unlock, implemented over mbedTLS 2.28, so that the
 * static binary does not link OpenSSL's libcrypto.a (3.6 MB of it).
 *
 * Built by cmake/build-static-deps.sh into PREFIX/lib/libtspi-openssl-shim.a;
 * cmake/StaticDeps.cmake links it after libtspi.a (hpcs_static::tspi ->
 * hpcs_static::tspi_openssl_shim -> hpcs_static::mbedcrypto).
 *
 * REAL (faithful to OpenSSL 3's documented behaviour for what trousers
 * passes; only SHA-1 exists, the one digest libtspi ever asks for):
 *   EVP_sha1, EVP_MD_get_size, EVP_MD_CTX_new, EVP_MD_CTX_free,
 *   EVP_MD_CTX_get0_md, EVP_DigestInit, EVP_DigestUpdate, EVP_DigestFinal
 *       -> mbedtls_sha1_*   (trousers' Trspi_Hash, Trspi_HashInit/Update/Final:
 *                            the OIAP/OSAP auth digests of every TPM command)
 *   HMAC                -> mbedtls_md_hmac (SHA-1)   (Trspi_HMAC: the auth
 *                            HMACs and OSAP shared secrets)
 *   PKCS1_MGF1          -> MGF1 of PKCS #1 over SHA-1  (Trspi_MGF1: the XOR
 *                            mask of Tspi_Data_Seal's sealx path and of
 *                            transport sessions)
 *
 * NOT PROVIDED, deliberately (no stubs): the rest of what libtspi.a
 * references (RSA_public_encrypt, RSA_padding_add_PKCS1_OAEP, RSA_verify,
 * RAND_bytes, EVP_Encrypt and EVP_Decrypt with the AES/DES ciphers,
 * ASN1_item_*, BN_bin2bn, ...). Trousers uses them in Tspi_Data_Bind,
 * Tspi_TPM_TakeOwnership, Tspi_Hash_VerifySignature, the AIK and migration
 * calls and the symmetric transport encryption, none of which src/tpm/tpm.cc
 * reaches. The static link uses -Wl,--gc-sections, and GNU ld reports an
 * undefined symbol only when a section it keeps refers to it; the sections
 * that refer to these are all discarded, so the link succeeds without them.
 * If a change (a new Tspi_* call, another trousers version) makes one of them
 * reachable, the link fails with "undefined reference to `RSA_...'" instead
 * of shipping a stub; implement that function here then. Without
 * --gc-sections the link fails the same way.
 *
 * Compiled against OpenSSL's own headers (libssl-dev), so every definition
 * here is checked against the prototype trousers was compiled with. The
 * OpenSSL types are opaque there; this file defines their structs.
 *
 * Trousers quirks this must cope with (src/trspi/crypto/openssl/hash.c):
 *   - Trspi_HashUpdate (on error) and Trspi_HashFinal release a context made
 *     by EVP_MD_CTX_new with plain free(), not EVP_MD_CTX_free: so a context
 *     is one calloc()ed block owning nothing else, and EVP_DigestFinal wipes
 *     the hash state in it (OpenSSL's EVP_DigestFinal resets the context too).
 *   - Trspi_HMAC ignores HMAC's return value: on failure HMAC writes a zero
 *     MAC (which no TPM response will match) rather than leaving the caller's
 *     buffer as it was.
 *   - Trspi_MGF1 returns PKCS1_MGF1's result as a TSS_RESULT: 0 is success,
 *     as in OpenSSL (which returns -1 on error).
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha1.h>

#define SHIM_SHA1_SIZE 20

struct evp_md_st {
  int size;
};

/* The only EVP_MD there is. */
static const EVP_MD shim_sha1 = {SHIM_SHA1_SIZE};

struct evp_md_ctx_st {
  const EVP_MD* md; /* NULL until EVP_DigestInit, and after EVP_DigestFinal */
  mbedtls_sha1_context sha1;
};

const EVP_MD* EVP_sha1(void) { return &shim_sha1; }

int EVP_MD_get_size(const EVP_MD* md) { return md ? md->size : -1; /* OpenSSL 3: -1 for NULL */ }

EVP_MD_CTX* EVP_MD_CTX_new(void) {
  /* calloc, not anything fancier: trousers may free() it. */
  EVP_MD_CTX* ctx = calloc(1, sizeof *ctx);
  if (ctx) mbedtls_sha1_init(&ctx->sha1);
  return ctx;
}

static void shim_md_ctx_reset(EVP_MD_CTX* ctx) {
  mbedtls_sha1_free(&ctx->sha1); /* zeroizes */
  mbedtls_sha1_init(&ctx->sha1);
  ctx->md = NULL;
}

void EVP_MD_CTX_free(EVP_MD_CTX* ctx) {
  if (!ctx) return;
  mbedtls_sha1_free(&ctx->sha1);
  mbedtls_platform_zeroize(ctx, sizeof *ctx);
  free(ctx);
}

const EVP_MD* EVP_MD_CTX_get0_md(const EVP_MD_CTX* ctx) { return ctx ? ctx->md : NULL; }

/* OpenSSL returns 1 on success, 0 on failure. */
int EVP_DigestInit(EVP_MD_CTX* ctx, const EVP_MD* type) {
  if (!ctx) return 0;
  shim_md_ctx_reset(ctx);
  if (type != &shim_sha1) return 0;
  if (mbedtls_sha1_starts_ret(&ctx->sha1) != 0) return 0;
  ctx->md = type;
  return 1;
}

int EVP_DigestUpdate(EVP_MD_CTX* ctx, const void* d, size_t cnt) {
  if (!ctx || ctx->md != &shim_sha1) return 0;
  if (cnt == 0) return 1;
  if (!d) return 0;
  if (mbedtls_sha1_update_ret(&ctx->sha1, d, cnt) != 0) {
    shim_md_ctx_reset(ctx);
    return 0;
  }
  return 1;
}

/* Writes the digest and resets ctx (OpenSSL's EVP_DigestFinal cleans up the
 * context; only EVP_DigestFinal_ex leaves it as it was). */
int EVP_DigestFinal(EVP_MD_CTX* ctx, unsigned char* md, unsigned int* s) {
  int ok;
  if (!ctx || ctx->md != &shim_sha1 || !md) {
    if (ctx) shim_md_ctx_reset(ctx);
    return 0;
  }
  ok = mbedtls_sha1_finish_ret(&ctx->sha1, md) == 0;
  if (ok && s) *s = SHIM_SHA1_SIZE;
  if (!ok) mbedtls_platform_zeroize(md, SHIM_SHA1_SIZE);
  shim_md_ctx_reset(ctx);
  return ok;
}

/* One-shot HMAC. Unlike OpenSSL, a NULL md (OpenSSL: a static buffer) is an
 * error; trousers always passes its own buffer. */
unsigned char* HMAC(const EVP_MD* evp_md, const void* key, int key_len, const unsigned char* data,
                    size_t data_len, unsigned char* md, unsigned int* md_len) {
  static const unsigned char empty[1];
  const mbedtls_md_info_t* info;
  if (!md) return NULL;
  if (evp_md != &shim_sha1 || key_len < 0 || (!key && key_len != 0) || (!data && data_len != 0) ||
      !(info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA1)) ||
      mbedtls_md_hmac(info, key ? key : empty, (size_t)key_len, data ? data : empty, data_len,
                      md) != 0) {
    /* Trspi_HMAC ignores the result: leave a MAC that matches nothing. */
    mbedtls_platform_zeroize(md, SHIM_SHA1_SIZE);
    if (md_len) *md_len = 0;
    return NULL;
  }
  if (md_len) *md_len = SHIM_SHA1_SIZE;
  return md;
}

/* MGF1 of PKCS #1 v2.1 (RFC 8017, B.2.1): mask = the first len bytes of
 * H(seed || C(0)) || H(seed || C(1)) || ..., C(i) the 32-bit big-endian
 * counter. Returns 0 on success, -1 on error, as OpenSSL does. */
int PKCS1_MGF1(unsigned char* mask, long len, const unsigned char* seed, long seedlen,
               const EVP_MD* dgst) {
  mbedtls_sha1_context c;
  unsigned char cnt[4], h[SHIM_SHA1_SIZE];
  unsigned long i;
  long out = 0;
  int rc = -1;

  if (dgst != &shim_sha1 || len < 0 || seedlen < 0 || (len > 0 && !mask) ||
      (seedlen > 0 && !seed)) {
    return -1;
  }
  /* The counter is 32 bits: at most 2^32 blocks (never near for trousers). */
  if ((unsigned long)len / SHIM_SHA1_SIZE > 0xffffffffUL) return -1;
  mbedtls_sha1_init(&c);
  for (i = 0; out < len; i++) {
    long n;
    cnt[0] = (unsigned char)(i >> 24);
    cnt[1] = (unsigned char)(i >> 16);
    cnt[2] = (unsigned char)(i >> 8);
    cnt[3] = (unsigned char)i;
    if (mbedtls_sha1_starts_ret(&c) != 0 ||
        (seedlen > 0 && mbedtls_sha1_update_ret(&c, seed, (size_t)seedlen) != 0) ||
        mbedtls_sha1_update_ret(&c, cnt, sizeof cnt) != 0 || mbedtls_sha1_finish_ret(&c, h) != 0) {
      goto done;
    }
    n = len - out < SHIM_SHA1_SIZE ? len - out : SHIM_SHA1_SIZE;
    memcpy(mask + out, h, (size_t)n);
    out += n;
  }
  rc = 0;
done:
  if (rc != 0 && len > 0) mbedtls_platform_zeroize(mask, (size_t)len);
  mbedtls_sha1_free(&c);
  mbedtls_platform_zeroize(h, sizeof h);
  return rc;
}
