#include "base/wipe_alloc.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include "base/secret.h"

namespace hpcs {

void* WipingMalloc(size_t n) { return malloc(n); }

void WipingFree(void* p) {
  if (!p) return;
  Wipe(p, malloc_usable_size(p));
  free(p);
}

void* WipingRealloc(void* p, size_t n) {
  if (!p) return malloc(n);
  if (n == 0) {
    WipingFree(p);
    return nullptr;
  }
  void* q = malloc(n);
  if (!q) return nullptr;  // p stays valid, as realloc leaves it
  size_t old = malloc_usable_size(p);
  memcpy(q, p, old < n ? old : n);
  WipingFree(p);
  return q;
}

void* WipingCalloc(size_t count, size_t size) { return calloc(count, size); }

char* WipingStrdup(const char* s) {
  size_t n = strlen(s) + 1;
  auto* d = static_cast<char*>(malloc(n));
  if (d) memcpy(d, s, n);
  return d;
}

}  // namespace hpcs
