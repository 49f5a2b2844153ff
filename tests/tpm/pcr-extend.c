/* Test helper: extends one PCR through tcsd (tpm-tools has no tool for it).
 * Usage: pcr-extend PCR   (tcsd from TSS_TCSD_HOSTNAME / TSS_TCSD_PORT)
 * Prints the new PCR value in hex. Exit 0 ok, 1 TSS error, 2 misuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trousers/tss.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PCR\n", argv[0]);
    return 2;
  }
  char* end;
  unsigned long pcr = strtoul(argv[1], &end, 10);
  if (*argv[1] == '\0' || *end != '\0' || pcr > 23) {
    fprintf(stderr, "pcr-extend: bad PCR index '%s'\n", argv[1]);
    return 2;
  }
  TSS_HCONTEXT ctx;
  TSS_HTPM tpm;
  BYTE digest[20];
  const char tag[] = "hpcs-for-luks test";
  memset(digest, 0, sizeof digest);
  memcpy(digest, tag, sizeof tag - 1 < sizeof digest ? sizeof tag - 1 : sizeof digest);
  UINT32 len = 0;
  BYTE* value = NULL;
  TSS_RESULT r = Tspi_Context_Create(&ctx);
  if (r == TSS_SUCCESS) r = Tspi_Context_Connect(ctx, NULL);
  if (r == TSS_SUCCESS) r = Tspi_Context_GetTpmObject(ctx, &tpm);
  if (r == TSS_SUCCESS)
    r = Tspi_TPM_PcrExtend(tpm, (UINT32)pcr, sizeof digest, digest, NULL, &len, &value);
  if (r != TSS_SUCCESS) {
    fprintf(stderr, "pcr-extend: PCR %lu: %s (0x%x)\n", pcr, Trspi_Error_String(r), r);
    return 1;
  }
  for (UINT32 i = 0; i < len; ++i) printf("%02x", value[i]);
  printf("\n");
  Tspi_Context_FreeMemory(ctx, NULL);
  Tspi_Context_Close(ctx);
  return 0;
}
