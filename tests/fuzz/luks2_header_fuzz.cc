// What hpcs-unlock's password agent reads at boot from places it does not
// control: the LUKS2 header of the device a request names (a disk may carry a
// crafted one: luks2_metadata.cc) and systemd's ask files (ask_password.cc).
// The first byte picks what the rest is ('0' to '3' for readable seeds):
//   image     a device image, read by ReadLuks2Header (from a memfd);
//   resummed  the same, with the checksum of each copy of the header in it put
//             right first, so that the fuzzer gets past it to the fields and
//             the JSON; an intact primary copy must then read (as itself or as
//             the newer secondary after it);
//   json      a JSON area: ParseLuks2Metadata, and ReadLuks2Header of an image
//             made around it, which must agree;
//   ask       an ask file (ParseAskRequest, CryptsetupDevice); and a device
//             path, which must come back from its Id= as systemd escapes it.
// Always: a header that reads has key slot, token and token key slot ids in
// 0..1024, sorted by id; a refusal is one of the documented errors, says why
// and names the path. The image seeds are the first 32 KiB (the header area)
// of 16 MiB files that cryptsetup 2.6 luksFormat --type luks2 made, with a
// luks2-keyring token (token add --key-description).
#include <mbedtls/md.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>

#include "core/ask_password.h"
#include "core/luks2_metadata.h"
#include "fuzz_check.h"

namespace {

using namespace hpcs;

enum Mode { kImage, kResummed, kJson, kAsk, kModes };

// The on-disk format (luks2_metadata.cc has the same, private to it). The
// magic of each copy, then version 2.
constexpr std::string_view kPrimary("LUKS\xba\xbe\0\2", 8), kSecondary("SKUL\xba\xbe\0\2", 8);
constexpr size_t kBinarySize = 4096;
constexpr size_t kHdrSizeAt = 8, kSeqidAt = 16, kChecksumAlgAt = 72, kHdrOffsetAt = 256;
constexpr size_t kChecksumAt = 448, kChecksumSize = 64;
constexpr size_t kUuidAt = 168, kUuidSize = 40;  // luksUUID, NUL-terminated
constexpr uint64_t kHdrSizes[] = {0x4000,  0x8000,   0x10000,  0x20000, 0x40000,
                                  0x80000, 0x100000, 0x200000, 0x400000};

uint64_t BigEndian(const std::string& b, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(b[at + i]);
  return v;
}

void PutBigEndian(std::string* b, size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) (*b)[at + 7 - i] = static_cast<char>(v >> (8 * i));
}

bool IsHdrSize(uint64_t n) {
  return std::find(std::begin(kHdrSizes), std::end(kHdrSizes), n) != std::end(kHdrSizes);
}

// Puts the SHA-256 checksum of the copy at `at` (hdr_size bytes) in place.
void Resum(std::string* img, size_t at, size_t hdr_size) {
  std::fill_n(img->begin() + static_cast<ptrdiff_t>(at + kChecksumAt), kChecksumSize, '\0');
  auto* p = reinterpret_cast<unsigned char*>(img->data());
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), p + at, hdr_size, p + at + kChecksumAt);
}

// Resums every copy that has its magic and a hdr_size within the image: the
// secondaries from the last, then the primary, whose area may cover them.
void ResumAll(std::string* img) {
  for (size_t i = std::size(kHdrSizes); i-- > 0;) {
    size_t at = kHdrSizes[i];
    if (img->size() < at + kBinarySize || img->compare(at, 6, kSecondary.substr(0, 6)) != 0)
      continue;
    uint64_t n = BigEndian(*img, at + kHdrSizeAt);
    if (n >= kBinarySize && n <= img->size() - at) Resum(img, at, n);
  }
  if (img->size() < kBinarySize || img->compare(0, 6, kPrimary.substr(0, 6)) != 0) return;
  uint64_t n = BigEndian(*img, kHdrSizeAt);
  if (n >= kBinarySize && n <= img->size()) Resum(img, 0, n);
}

// The copy at `at` as ReadLuks2Header must take it, once its checksum is
// right: what its JSON parses to; false when a field or the JSON is wrong.
bool IntactCopy(const std::string& img, size_t at, LuksHeader* out) {
  if (img.size() < at + kBinarySize) return false;
  if (img.compare(at, 8, at == 0 ? kPrimary : kSecondary) != 0) return false;
  uint64_t n = BigEndian(img, at + kHdrSizeAt);
  if (!IsHdrSize(n) || (at != 0 && n != at) || n > img.size() - at ||
      BigEndian(img, at + kHdrOffsetAt) != at ||
      std::string_view(img.c_str() + at + kChecksumAlgAt) != "sha256") {
    return false;
  }
  std::string_view json(img.data() + at + kBinarySize, n - kBinarySize);
  size_t end = json.find('\0');
  if (end == std::string_view::npos || json.find_first_not_of('\0', end) != std::string::npos) {
    return false;
  }
  std::string err;
  if (ParseLuks2Metadata(json.substr(0, end), out, &err) != 0) return false;
  // The UUID is the binary header's, not the JSON's.
  out->uuid.assign(img.data() + at + kUuidAt, strnlen(img.data() + at + kUuidAt, kUuidSize));
  return true;
}

// A 16 KiB header, both copies, around `json` (no NUL, under 12 KiB).
std::string ImageAround(std::string_view json) {
  std::string img(2 * 0x4000, '\0');
  for (size_t at : {size_t{0}, size_t{0x4000}}) {
    img.replace(at, 8, at == 0 ? kPrimary : kSecondary);
    PutBigEndian(&img, at + kHdrSizeAt, 0x4000);
    PutBigEndian(&img, at + kSeqidAt, 1);
    PutBigEndian(&img, at + kHdrOffsetAt, at);
    img.replace(at + kChecksumAlgAt, 6, "sha256");
    img.replace(at + kBinarySize, json.size(), json);
    Resum(&img, at, 0x4000);
  }
  return img;
}

void CheckIds(const LuksHeader& h) {
  auto in_range = [](int id) { return id >= 0 && id <= 1024; };
  auto by_id = [](const auto& a, const auto& b) { return a.id < b.id; };
  for (const auto& k : h.keyslots) FUZZ_CHECK(in_range(k.id), "a key slot id in 0..1024");
  for (const auto& t : h.tokens) {
    FUZZ_CHECK(in_range(t.id), "a token id in 0..1024");
    FUZZ_CHECK(std::all_of(t.keyslots.begin(), t.keyslots.end(), in_range),
               "a token's key slot ids in 0..1024");
  }
  FUZZ_CHECK(std::is_sorted(h.keyslots.begin(), h.keyslots.end(), by_id), "key slots by id");
  FUZZ_CHECK(std::is_sorted(h.tokens.begin(), h.tokens.end(), by_id), "tokens by id");
}

// ReadLuks2Header of `img`, through a memfd that every input reuses.
int ReadImage(const std::string& img, LuksHeader* h) {
  static const int fd = memfd_create("luks2_header_fuzz", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "memfd_create");
  FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
  FUZZ_CHECK(pwrite(fd, img.data(), img.size(), 0) == static_cast<ssize_t>(img.size()), "pwrite");
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  std::string err;
  int r = ReadLuks2Header(path, h, &err);
  if (r == 0) {
    CheckIds(*h);
  } else {
    FUZZ_CHECK(r == -EMEDIUMTYPE || r == -EBADMSG, err.c_str());
    FUZZ_CHECK(err.find("'" + path + "'") != std::string::npos, "the error names the path");
  }
  return r;
}

void Image(std::string img, bool resum) {
  if (resum) ResumAll(&img);
  LuksHeader h, primary, secondary;
  int r = ReadImage(img, &h);
  if (!resum || !IntactCopy(img, 0, &primary)) return;
  FUZZ_CHECK(r == 0, "an intact primary reads");
  const size_t after = BigEndian(img, kHdrSizeAt);
  FUZZ_CHECK(h == primary || (IntactCopy(img, after, &secondary) && h == secondary),
             "what reads is the primary or the secondary after it");
}

void Json(std::string_view json) {
  LuksHeader h;
  std::string err;
  int r = ParseLuks2Metadata(json, &h, &err);
  if (r == 0) {
    CheckIds(h);
  } else {
    FUZZ_CHECK(r == -EPROTO && !err.empty(), "a refusal says why");
    FUZZ_CHECK(err.find('\n') == std::string::npos, "in one line");
  }
  if (json.size() >= 0x4000 - kBinarySize || json.find('\0') != std::string_view::npos) return;
  LuksHeader read;
  int rr = ReadImage(ImageAround(json), &read);
  if (r == 0) {
    FUZZ_CHECK(rr == 0 && read == h, "the header reads as its JSON parses");
  } else {
    FUZZ_CHECK(rr == -EBADMSG, "JSON that does not parse damages both copies");
  }
}

// systemd's cescape(): how systemd-cryptsetup puts the device path in Id=.
std::string CEscape(std::string_view s) {
  static constexpr std::string_view kFrom = "\a\b\f\n\r\t\v\\\"'", kTo = "abfnrtv\\\"'";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (size_t k = kFrom.find(c); k != std::string_view::npos) {
      out += '\\';
      out += kTo[k];
    } else if (u < ' ' || u >= 127) {
      out += '\\';
      for (int shift : {6, 3, 0}) out += static_cast<char>('0' + ((u >> shift) & 7));
    } else {
      out += c;
    }
  }
  return out;
}

void Ask(std::string_view text) {
  AskRequest r;
  std::string err;
  if (ParseAskRequest(text, &r, &err) < 0) {
    FUZZ_CHECK(!err.empty(), "a refusal says why");
  } else {
    FUZZ_CHECK(!r.socket.empty() && r.pid > 0, "a request has a socket and a PID");
    if (auto dev = CryptsetupDevice(r)) {
      FUZZ_CHECK(r.id.starts_with("cryptsetup:"), "only systemd-cryptsetup's requests");
      FUZZ_CHECK(dev->starts_with('/') && dev->find('\0') == std::string::npos, dev->c_str());
    }
  }
  // The input as a device path, escaped into the Id= of a request.
  const std::string path = "/" + std::string(text);
  const bool nul = path.find('\0') != std::string::npos;
  AskRequest q;
  q.id = "cryptsetup:" + CEscape(path);
  auto dev = CryptsetupDevice(q);
  FUZZ_CHECK(nul ? !dev : dev == path, "the device path comes back from its Id=");
  // Through the file, but for spaces at the end, which INI parsers (systemd's too) drop.
  if (path.back() == ' ') return;
  std::string file = "[Ask]\nPID=1\nSocket=/run/systemd/ask-password/sck.1\nId=" + q.id + "\n";
  FUZZ_CHECK(ParseAskRequest(file, &q, &err) == 0, err.c_str());
  FUZZ_CHECK(CryptsetupDevice(q) == dev, "the same from the ask file");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest = fuzz::AsText(data + 1, size - 1);
  switch (static_cast<Mode>(data[0] % kModes)) {
    case kImage:
      Image(std::string(rest), false);
      break;
    case kResummed:
      Image(std::string(rest), true);
      break;
    case kJson:
      Json(rest);
      break;
    case kAsk:
      Ask(rest);
      break;
    case kModes:
      break;
  }
  return 0;
}
