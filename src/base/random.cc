#include "base/random.h"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/encoding.h"
#include "base/error.h"

namespace hpcs {
namespace {

// For the callers that cannot report an error (see random.h).
void RandomOrAbort(void* buf, size_t n) {
  std::string err;
  if (RandomBytes(buf, n, &err) == 0) return;
  std::string msg = "hpcs: no random numbers: " + err + "\n";
  ssize_t unused = write(STDERR_FILENO, msg.data(), msg.size());
  (void)unused;
  abort();  // layers: no random numbers, and the caller cannot take an error
}

}  // namespace

int RandomBytes(void* buf, size_t n, std::string* err) {
  auto* p = static_cast<unsigned char*>(buf);
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      return FailErrno(err, e, "getrandom failed");
    }
    got += static_cast<size_t>(r);
  }
  return 0;
}

int RandomSecret(size_t n, Secret* out, std::string* err) {
  Secret s(n);
  if (int r = RandomBytes(s.data(), n, err); r < 0) return r;
  *out = std::move(s);
  return 0;
}

uint32_t RandomU32() {
  uint32_t v;
  RandomOrAbort(&v, sizeof v);
  return v;
}

std::string NewUuid4() {
  unsigned char b[16];
  RandomOrAbort(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // variant 10
  std::string h = HexEncode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

std::string RandomHex(size_t n) {
  std::vector<unsigned char> b(n);
  RandomOrAbort(b.data(), n);
  return HexEncode(b);
}

}  // namespace hpcs
