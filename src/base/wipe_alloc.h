// malloc, free, realloc, calloc and strdup for the C libraries that hold our
// secrets in memory of their own (cJSON's parsed plaintext, libcurl's request
// buffer with the IAM `apikey=` body or a wrap plaintext): every block is
// wiped before it goes back to the allocator.
#ifndef HPCS_BASE_WIPE_ALLOC_H_
#define HPCS_BASE_WIPE_ALLOC_H_

#include <cstddef>

namespace hpcs {

void* WipingMalloc(size_t n);
void WipingFree(void* p);
// Always a new block when it grows or shrinks: the old one is wiped, so no
// copy is left behind by a move.
void* WipingRealloc(void* p, size_t n);
void* WipingCalloc(size_t count, size_t size);
char* WipingStrdup(const char* s);

}  // namespace hpcs

#endif  // HPCS_BASE_WIPE_ALLOC_H_
